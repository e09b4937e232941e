//! The dashboard's routing table, once for every framework: which path
//! under the mount point is which endpoint, which methods each takes, and
//! what every request that fits none is answered.

use std::error::Error;
use std::fmt;

use crate::{Rejection, TaskId};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The page, at the mount point itself (`/etiquette`): its links name
    /// the mount point, since relative to it they would leave it.
    PageAtMount,
    /// The page, at the mount point with a trailing slash (`/etiquette/`).
    Page,
    /// The page's style sheet or script.
    Asset(Asset),
    /// The board as JSON (`/api/snapshot`).
    Snapshot,
    /// The board live, as Server-Sent Events (`/api/stream`).
    Stream,
    /// One task and its events as JSON (`/api/tasks/{id}`).
    Task(TaskId),
    /// Cancels a task (`POST /api/tasks/{id}/cancel`).
    Cancel(TaskId),
    /// Retries a failed or cancelled typed job (`POST /api/tasks/{id}/retry`).
    Retry(TaskId),
}

/// A file the page loads, embedded in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Asset {
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
}

/// The page, with `{base}` before each link to its style and script.
const PAGE: &str = include_str!("assets/index.html");

/// The page with its links under `base`: `./` at the mount point with a
/// trailing slash, `./<mount point's last segment>/` without, so that they
/// resolve under the mount point wherever the application put it.
pub(crate) fn page(base: &str) -> String {
    PAGE.replace("{base}", base)
}

/// The base of the page's links at the mount point `original_path` (no
/// trailing slash): its last segment, as an HTML attribute may hold it.
pub(crate) fn base_at_mount(original_path: &str) -> String {
    let last = original_path.rsplit('/').next().unwrap_or_default();
    if last.is_empty() {
        return "./".to_owned();
    }
    let mut base = String::from("./");
    for c in last.chars() {
        match c {
            '&' => base.push_str("&amp;"),
            '"' => base.push_str("&quot;"),
            '\'' => base.push_str("&#39;"),
            '<' => base.push_str("&lt;"),
            '>' => base.push_str("&gt;"),
            c => base.push(c),
        }
    }
    base.push('/');
    base
}
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_str!("assets/dashboard.css"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("assets/dashboard.js"),
};

const READ: &[&str] = &["GET", "HEAD"];
/// A stream is never answered to `HEAD`: a client asking only for headers
/// would hold the stream open for nothing.
const STREAM: &[&str] = &["GET"];
const ACT: &[&str] = &["POST"];

impl Route {
    /// The route of `method` on `path` (under the mount point: `""`, `/`,
    /// `/api/snapshot`, …).
    ///
    /// # Errors
    /// [`Refusal`] when no route has this path (404), the id is not a task
    /// id (400), or the route takes other methods (405).
    pub(crate) fn of(method: &str, path: &str) -> Result<Self, Refusal> {
        let segments: Vec<&str> = match path {
            "" => Vec::new(),
            path => match path.strip_prefix('/') {
                Some(rest) => rest.split('/').collect(),
                None => return Err(Refusal::NoSuchPage),
            },
        };
        let id = |text: &str| text.parse::<TaskId>().map_err(|_| Refusal::NotATaskId);
        let route = match segments.as_slice() {
            [] => Self::PageAtMount,
            [""] => Self::Page,
            ["dashboard.css"] => Self::Asset(STYLE),
            ["dashboard.js"] => Self::Asset(SCRIPT),
            ["api", "snapshot"] => Self::Snapshot,
            ["api", "stream"] => Self::Stream,
            ["api", "tasks", task] => Self::Task(id(task)?),
            ["api", "tasks", task, "cancel"] => Self::Cancel(id(task)?),
            ["api", "tasks", task, "retry"] => Self::Retry(id(task)?),
            _ => return Err(Refusal::NoSuchPage),
        };
        let methods = route.methods();
        if methods.contains(&method) {
            Ok(route)
        } else {
            Err(Refusal::Method(methods))
        }
    }

    /// The methods the route takes.
    const fn methods(self) -> &'static [&'static str] {
        match self {
            Self::Stream => STREAM,
            Self::Cancel(_) | Self::Retry(_) => ACT,
            _ => READ,
        }
    }
}

/// Why the dashboard did not do what a request asked. Each is answered
/// with its status and its message as a plain-text body, as every
/// [`Rejection`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `404 Not Found`.
    NoSuchPage,
    /// `400 Bad Request`: the path's task id is not a number.
    NotATaskId,
    /// `405 Method Not Allowed`, with `Allow`.
    Method(&'static [&'static str]),
    /// `403 Forbidden`: the application did not allow cancelling.
    CancelNotAllowed,
    /// `403 Forbidden`: the application did not allow retrying.
    RetryNotAllowed,
    /// `403 Forbidden`: an action without the header the page sends, as a
    /// cross-site form would post it.
    NotFromThePage,
    /// `409 Conflict`: the task had finished.
    Finished(TaskId),
}

impl Refusal {
    /// The `Allow` header of a `405`.
    pub(crate) fn allow(&self) -> Option<String> {
        match self {
            Self::Method(methods) => Some(methods.join(", ")),
            _ => None,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchPage => f.write_str("no such dashboard page"),
            Self::NotATaskId => f.write_str("not a task id: expected a decimal number"),
            Self::Method(methods) => write!(f, "method not allowed: use {}", methods.join(" or ")),
            Self::CancelNotAllowed => f.write_str(
                "cancelling is not allowed on this dashboard: \
                 the application turns it on with `Dashboard::allow_cancel(true)`",
            ),
            Self::RetryNotAllowed => f.write_str(
                "retrying is not allowed on this dashboard: \
                 the application turns it on with `Dashboard::allow_retry(true)`",
            ),
            Self::NotFromThePage => write!(
                f,
                "actions must come from the dashboard's page (header `{}` missing)",
                super::ACTION_HEADER
            ),
            Self::Finished(id) => write!(f, "task {id} had already finished"),
        }
    }
}

impl Error for Refusal {}

impl Rejection for Refusal {
    fn status(&self) -> u16 {
        match self {
            Self::NoSuchPage => 404,
            Self::NotATaskId => 400,
            Self::Method(_) => 405,
            Self::CancelNotAllowed | Self::RetryNotAllowed | Self::NotFromThePage => 403,
            Self::Finished(_) => 409,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let route = |method, path| Route::of(method, path);
        assert_eq!(route("GET", ""), Ok(Route::PageAtMount));
        assert_eq!(route("GET", "/"), Ok(Route::Page));
        assert_eq!(route("HEAD", "/"), Ok(Route::Page));
        assert_eq!(route("GET", "/dashboard.js"), Ok(Route::Asset(SCRIPT)));
        assert_eq!(route("GET", "/api/snapshot"), Ok(Route::Snapshot));
        assert_eq!(route("GET", "/api/stream"), Ok(Route::Stream));
        assert_eq!(
            route("GET", "/api/tasks/7"),
            Ok(Route::Task(TaskId::new(7)))
        );
        assert_eq!(
            route("POST", "/api/tasks/7/cancel"),
            Ok(Route::Cancel(TaskId::new(7)))
        );
        assert_eq!(
            route("POST", "/api/tasks/7/retry"),
            Ok(Route::Retry(TaskId::new(7)))
        );
    }

    #[test]
    fn the_pages_links_stay_under_the_mount_point() {
        assert_eq!(base_at_mount("/admin/etiquette"), "./etiquette/");
        assert_eq!(base_at_mount("/"), "./");
        assert_eq!(base_at_mount("/a/x\"'<>&"), "./x&quot;&#39;&lt;&gt;&amp;/");
        let page = page("./etiquette/");
        assert!(
            page.contains(r#"href="./etiquette/dashboard.css""#),
            "{page}"
        );
        assert!(page.contains(r#"src="./etiquette/dashboard.js""#), "{page}");
    }

    #[test]
    fn what_fits_no_route() {
        let refused = |method, path| Route::of(method, path).unwrap_err();
        assert_eq!(refused("GET", "/nope"), Refusal::NoSuchPage);
        assert_eq!(refused("GET", "/api/tasks/7/"), Refusal::NoSuchPage);
        assert_eq!(refused("GET", "api/snapshot"), Refusal::NoSuchPage);
        assert_eq!(refused("GET", "/api/tasks/x"), Refusal::NotATaskId);
        assert_eq!(refused("GET", "/api/tasks/-1"), Refusal::NotATaskId);
        let get_cancel = refused("GET", "/api/tasks/7/cancel");
        assert_eq!(
            (get_cancel.status(), get_cancel.allow()),
            (405, Some("POST".into()))
        );
        assert_eq!(refused("GET", "/api/tasks/7/retry").status(), 405);
        assert_eq!(refused("HEAD", "/api/stream").status(), 405);
        assert_eq!(refused("POST", "/").allow(), Some("GET, HEAD".into()));
    }
}
