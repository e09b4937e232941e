//! The live dashboard (feature `dashboard`): what it shows and answers is
//! the core's [`Dashboard`]; this file only speaks actix-web.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, Scope, web};
use etiquette_core::backend::Backend;
use etiquette_core::dashboard::{
    ACTION_HEADER, Dashboard, DashboardBody, DashboardRequest, DashboardResponse,
};

/// The dashboard of a queue as a scope at `path`, to register in each
/// worker's `App`:
///
/// ```
/// use actix_web::App;
/// use etiquette_actix::{Dashboard, Etiquette};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// // Made once, outside the server's factory, and cloned into each worker.
/// let dashboard = Dashboard::new(&etiquette).allow_cancel(true);
/// let factory = move || {
///     App::new().service(etiquette_actix::dashboard("/etiquette", dashboard.clone()))
/// };
/// // HttpServer::new(factory).bind(..)?.run().await?;
/// # drop(factory);
/// # Ok(()) }
/// ```
///
/// It takes an [`Etiquette`](crate::Etiquette), a [`Decorum`](crate::Decorum)
/// or a configured [`Dashboard`] (see there what it shows and lets a
/// visitor do). The page is at `path` (`/etiquette`), and at `path`
/// with a trailing slash (`/etiquette/`).
///
/// # Authentication
///
/// The dashboard has none of its own: put it behind the application's,
/// with a middleware on the scope (or a guard, to answer 404 instead).
///
/// ```
/// use actix_web::body::MessageBody;
/// use actix_web::dev::{ServiceRequest, ServiceResponse};
/// use actix_web::http::header;
/// use actix_web::middleware::{Next, from_fn};
/// use actix_web::{App, Error, error};
/// use etiquette_actix::{Dashboard, Etiquette};
///
/// /// Lets operators through; your own check goes here (a session, a
/// /// token, a client certificate…).
/// async fn operators_only(
///     request: ServiceRequest,
///     next: Next<impl MessageBody>,
/// ) -> Result<ServiceResponse<impl MessageBody>, Error> {
///     match request.headers().get(header::AUTHORIZATION) {
///         Some(token) if token == "Bearer operator-token" => next.call(request).await,
///         _ => Err(error::ErrorUnauthorized("operators only")),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(16)?;
/// let dashboard = Dashboard::new(&etiquette);
/// let factory = move || {
///     App::new().service(
///         etiquette_actix::dashboard("/etiquette", dashboard.clone()).wrap(from_fn(operators_only)),
///     )
/// };
/// # drop(factory);
/// # Ok(()) }
/// ```
///
/// Make the [`Dashboard`] once and clone it into each worker's `App`, as
/// above: the dashboards of one queue share one board anyway, but each
/// [`Dashboard::new`] makes the options anew.
pub fn dashboard<B: Backend>(path: &str, dashboard: impl Into<Dashboard<B>>) -> Scope {
    let dashboard = dashboard.into();
    web::scope(path).default_service(web::to(move |request: HttpRequest| {
        let dashboard = dashboard.clone();
        async move { answer(&dashboard, &request).await }
    }))
}

async fn answer<B: Backend>(dashboard: &Dashboard<B>, request: &HttpRequest) -> HttpResponse {
    let answer = dashboard
        .answer(DashboardRequest {
            method: request.method().as_str(),
            // What follows the scope's path.
            path: request.match_info().unprocessed(),
            original_path: request.path(),
            action_header: request
                .headers()
                .get(ACTION_HEADER)
                .map(HeaderValue::as_bytes),
        })
        .await;
    into_response(answer, request)
}

fn into_response(answer: DashboardResponse, request: &HttpRequest) -> HttpResponse {
    let mut response: HttpResponse<BoxBody> = match answer.body {
        DashboardBody::Text(text) => HttpResponse::Ok().body(text.into_owned()),
        DashboardBody::Events(frames) => crate::sse::respond(frames)
            .respond_to(request)
            .map_into_boxed_body(),
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
