//! The live dashboard (feature `dashboard`): what it shows and answers is
//! the core's [`Dashboard`]; this file only speaks axum.

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use etiquette_core::backend::Backend;
use etiquette_core::dashboard::{
    ACTION_HEADER, Dashboard, DashboardBody, DashboardRequest, DashboardResponse,
};
use http::{HeaderName, HeaderValue, StatusCode};

/// The dashboard of a queue as a router, to nest where it is to be served,
/// with any state:
///
/// ```
/// use axum::Router;
/// use etiquette_axum::{Dashboard, Etiquette};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// let app: Router = Router::new()
///     // Read-only:
///     .nest("/etiquette", etiquette_axum::dashboard(etiquette.clone()))
///     // Or with a Cancel button on each unfinished task:
///     .nest(
///         "/admin/etiquette",
///         etiquette_axum::dashboard(Dashboard::new(&etiquette).allow_cancel(true)),
///     );
/// # drop(app);
/// # Ok(()) }
/// ```
///
/// It takes an [`Etiquette`](crate::Etiquette), a [`Decorum`](crate::Decorum)
/// or a configured [`Dashboard`] (see there what it shows and lets a
/// visitor do). The page is at the mount point (`/etiquette`); axum
/// routes `/etiquette/` to no router nested at `/etiquette`, so nest it
/// with `nest_service` instead where the page should answer there too.
///
/// # Authentication
///
/// The dashboard has none of its own: put it behind the application's, as
/// a layer on the nested router.
///
/// ```
/// use axum::Router;
/// use axum::extract::Request;
/// use axum::http::{StatusCode, header};
/// use axum::middleware::{self, Next};
/// use axum::response::Response;
/// use etiquette_axum::{Dashboard, Etiquette};
///
/// /// Lets operators through; your own check goes here (a session, a
/// /// token, a client certificate…).
/// async fn operators_only(request: Request, next: Next) -> Result<Response, StatusCode> {
///     match request.headers().get(header::AUTHORIZATION) {
///         Some(token) if token == "Bearer operator-token" => Ok(next.run(request).await),
///         _ => Err(StatusCode::UNAUTHORIZED),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// let dashboard = Dashboard::new(&etiquette).allow_cancel(true);
/// let app: Router = Router::new().nest(
///     "/etiquette",
///     etiquette_axum::dashboard(dashboard).layer(middleware::from_fn(operators_only)),
/// );
/// # drop(app);
/// # Ok(()) }
/// ```
pub fn dashboard<S, B>(dashboard: impl Into<Dashboard<B>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    B: Backend,
{
    let dashboard = dashboard.into();
    let handler = move |request: Request| {
        let dashboard = dashboard.clone();
        async move { answer(&dashboard, request).await }
    };
    Router::new()
        .route("/", any(handler.clone()))
        .route("/{*path}", any(handler))
}

async fn answer<B: Backend>(dashboard: &Dashboard<B>, request: Request) -> Response {
    // Set by the router the dashboard is nested in; the path as it came
    // when it is not nested.
    let original = request.extensions().get::<OriginalUri>();
    let original_path = original.map_or(request.uri().path(), |uri| uri.path());
    let request = DashboardRequest {
        method: request.method().as_str(),
        path: request.uri().path(),
        original_path,
        action_header: request
            .headers()
            .get(ACTION_HEADER)
            .map(HeaderValue::as_bytes),
    };
    into_response(dashboard.answer(request).await)
}

fn into_response(answer: DashboardResponse) -> Response {
    let mut response = match answer.body {
        DashboardBody::Text(text) => Body::from(text.into_owned()).into_response(),
        DashboardBody::Events(frames) => crate::sse::respond(frames).into_response(),
    };
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    response
}
