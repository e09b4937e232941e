//! The live dashboard (feature `dashboard`): what it shows and answers is
//! the core's [`Dashboard`]; this file only speaks poem.

use std::fmt;

use etiquette_core::backend::Backend;
use etiquette_core::dashboard::{
    ACTION_HEADER, Dashboard, DashboardBody, DashboardRequest, DashboardResponse,
};
use poem::http::{HeaderName, HeaderValue, StatusCode};
use poem::{Endpoint, Request, Response};

/// The dashboard of a queue as an endpoint, to nest where it is to be
/// served:
///
/// ```
/// use poem::Route;
/// use etiquette_poem::{Dashboard, Etiquette};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// let app = Route::new()
///     // Read-only:
///     .nest("/etiquette", etiquette_poem::dashboard(etiquette.clone()))
///     // Or with a Cancel button on each unfinished task:
///     .nest(
///         "/admin/etiquette",
///         etiquette_poem::dashboard(Dashboard::new(&etiquette).allow_cancel(true)),
///     );
/// # drop(app);
/// # Ok(()) }
/// ```
///
/// It takes an [`Etiquette`](crate::Etiquette), a [`Decorum`](crate::Decorum)
/// or a configured [`Dashboard`] (see there what it shows and lets a
/// visitor do). The page is at the mount point (`/etiquette`), and at the
/// mount point with a trailing slash (`/etiquette/`).
///
/// # Authentication
///
/// The dashboard has none of its own: put it behind the application's,
/// with a middleware around the endpoint.
///
/// ```
/// use poem::http::{StatusCode, header};
/// use poem::{Endpoint, EndpointExt, IntoResponse, Route};
/// use etiquette_poem::{Dashboard, Etiquette};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// let dashboard = Dashboard::new(&etiquette).allow_cancel(true);
/// let app = Route::new().nest(
///     "/etiquette",
///     // Lets operators through; your own check goes here (a session, a
///     // token, a client certificate…).
///     etiquette_poem::dashboard(dashboard).around(|endpoint, request| async move {
///         match request.header(header::AUTHORIZATION) {
///             Some("Bearer operator-token") => Ok(endpoint.call(request).await?.into_response()),
///             _ => Err(poem::Error::from_status(StatusCode::UNAUTHORIZED)),
///         }
///     }),
/// );
/// # drop(app);
/// # Ok(()) }
/// ```
pub fn dashboard<B: Backend>(dashboard: impl Into<Dashboard<B>>) -> DashboardEndpoint<B> {
    DashboardEndpoint(dashboard.into())
}

/// The endpoint [`dashboard()`] makes.
pub struct DashboardEndpoint<B: Backend>(Dashboard<B>);

// By hand: derived, they would ask the backend to be `Clone` and `Debug`.
impl<B: Backend> Clone for DashboardEndpoint<B> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<B: Backend> fmt::Debug for DashboardEndpoint<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DashboardEndpoint").field(&self.0).finish()
    }
}

impl<B: Backend> Endpoint for DashboardEndpoint<B> {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let answer = self
            .0
            .answer(DashboardRequest {
                method: request.method().as_str(),
                // What follows the path the endpoint is nested at.
                path: request.uri().path(),
                original_path: request.original_uri().path(),
                action_header: request
                    .headers()
                    .get(ACTION_HEADER)
                    .map(HeaderValue::as_bytes),
            })
            .await;
        Ok(into_response(answer))
    }
}

fn into_response(answer: DashboardResponse) -> Response {
    let mut response = match answer.body {
        DashboardBody::Text(text) => Response::builder().body(text.into_owned()),
        DashboardBody::Events(frames) => crate::sse::respond(frames),
    };
    response.set_status(
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}
