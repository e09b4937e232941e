//! A dashboard request as every adapter hands it over, and the answer it
//! turns into its framework's response: the one seam between the dashboard
//! and a web framework.

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;

use futures_util::Stream;

use crate::{REJECTION_CONTENT_TYPE, Rejection, SseFrame};

/// What the dashboard needs of a request; a web adapter fills it in from
/// its framework's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardRequest<'a> {
    /// The method, as sent (`GET`, `POST`, …).
    pub method: &'a str,
    /// The path under the dashboard's mount point: `/` for the page,
    /// `/api/snapshot`, …; for the mount point itself (`/etiquette`, not
    /// `/etiquette/`), `""`, or `/` as frameworks that nest give it (told
    /// apart from the page by `original_path`).
    pub path: &'a str,
    /// The whole path, as the browser sent it: the page served at the
    /// mount point itself names it in its links.
    pub original_path: &'a str,
    /// The value of the [`ACTION_HEADER`](super::ACTION_HEADER), which the
    /// page sends with every action.
    pub action_header: Option<&'a [u8]>,
}

/// A frame stream, as a [`DashboardBody::Events`] holds it.
pub type SseFrames = Pin<Box<dyn Stream<Item = SseFrame> + Send + 'static>>;

/// The body of a [`DashboardResponse`].
pub enum DashboardBody {
    /// A whole body: a page, a file, JSON, or a refusal's message.
    Text(Cow<'static, str>),
    /// Server-Sent Events: the adapter answers with its framework's SSE
    /// response (`text/event-stream`, keep-alive comments every
    /// [`SSE_KEEP_ALIVE`](crate::SSE_KEEP_ALIVE)), adding the response's
    /// headers.
    Events(SseFrames),
}

impl fmt::Debug for DashboardBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.debug_tuple("Text").field(&text.len()).finish(),
            Self::Events(_) => f.write_str("Events"),
        }
    }
}

/// The dashboard's answer to a request, for a web adapter to turn into its
/// framework's response.
#[derive(Debug)]
#[non_exhaustive]
pub struct DashboardResponse {
    /// The HTTP status code.
    pub status: u16,
    /// Headers, `content-type` among them for a [`DashboardBody::Text`].
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// The body.
    pub body: DashboardBody,
}

/// Headers on every answer: a body is what its content type says, and
/// nothing the dashboard answers is cached by the way.
const EVERY: [(&str, &str); 2] = [
    ("x-content-type-options", "nosniff"),
    ("cache-control", "no-store"),
];

/// The page's: it runs its own script and style only, connects to its own
/// origin only, and is framed by its own origin only.
const PAGE: [(&str, &str); 2] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    ),
    ("referrer-policy", "same-origin"),
];

impl DashboardResponse {
    fn new(status: u16, headers: &[(&'static str, &'static str)], body: DashboardBody) -> Self {
        let headers = EVERY
            .iter()
            .chain(headers)
            .map(|&(name, value)| (name, Cow::Borrowed(value)))
            .collect();
        Self {
            status,
            headers,
            body,
        }
    }

    /// `200 OK` with `body` of `content_type`; the body left out for
    /// `HEAD`.
    pub(crate) fn text(
        method: &str,
        content_type: &'static str,
        body: impl Into<Cow<'static, str>>,
    ) -> Self {
        let body = if method == "HEAD" {
            Cow::Borrowed("")
        } else {
            body.into()
        };
        Self::new(
            200,
            &[("content-type", content_type)],
            DashboardBody::Text(body),
        )
    }

    /// The page, with its security headers.
    pub(crate) fn page(method: &str, body: String) -> Self {
        let mut response = Self::text(method, "text/html; charset=utf-8", body);
        response
            .headers
            .extend(PAGE.map(|(name, value)| (name, Cow::Borrowed(value))));
        response
    }

    /// `200 OK` with a JSON body.
    pub(crate) fn json(method: &str, value: &serde_json::Value) -> Self {
        Self::text(method, "application/json", value.to_string())
    }

    /// `200 OK`, a stream of events.
    pub(crate) fn events(frames: SseFrames) -> Self {
        // Proxies such as nginx would otherwise hold the events back.
        Self::new(
            200,
            &[("x-accel-buffering", "no")],
            DashboardBody::Events(frames),
        )
    }

    /// A refusal: its status, `Retry-After` when it gives one, `Allow`
    /// when given, and its message as a plain-text body.
    pub(crate) fn refused(error: &impl Rejection, allow: Option<String>) -> Self {
        let body = DashboardBody::Text(Cow::Owned(error.to_string()));
        let mut response = Self::new(
            error.status(),
            &[("content-type", REJECTION_CONTENT_TYPE)],
            body,
        );
        if let Some(after) = error.retry_after() {
            response
                .headers
                .push(("retry-after", Cow::Owned(after.to_string())));
        }
        if let Some(allow) = allow {
            response.headers.push(("allow", Cow::Owned(allow)));
        }
        response
    }
}
