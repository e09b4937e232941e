//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`.

#[path = "support.rs"]
mod support;

use std::time::Duration;

use etiquette_poem::sse::{self, LastEventId};
use etiquette_poem::{Decorum, Etiquette, TaskId, TaskRejected, TaskStatus};
use poem::error::NotFoundError;
use poem::http::{StatusCode, header};
use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::web::{Html, Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post};

/// Starts a job: 202 Accepted, its id, and where to follow it.
#[handler]
async fn start_job(decorum: Decorum) -> Result<Response, TaskRejected> {
    let job = decorum.task_with_context(support::job).add().await?;
    let id = job.id();
    Ok(
        Json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") }))
            .with_status(StatusCode::ACCEPTED)
            .with_header(header::LOCATION, format!("/jobs/{id}"))
            .into_response(),
    )
}

#[handler]
async fn job_status(decorum: Decorum, Path(id): Path<TaskId>) -> poem::Result<Json<TaskStatus>> {
    let job = decorum.handle(id).ok_or(NotFoundError)?;
    Ok(Json(job.status()))
}

#[handler]
fn job_events(
    decorum: Decorum,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> poem::Result<Response> {
    Ok(sse::task_events(&decorum, id, last)?)
}

#[handler]
fn page() -> Html<&'static str> {
    Html(support::JOBS_PAGE)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(4)
        .event_buffer(1024)
        .build()?;
    let app = Route::new()
        .at("/", get(page))
        .at("/jobs", post(start_job))
        .at("/jobs/:id", get(job_status))
        .at("/jobs/:id/events", get(job_events))
        .data(etiquette.clone());

    // Bound before logging, so the log never announces a port not yet open.
    let acceptor = TcpListener::bind(support::address())
        .into_acceptor()
        .await?;
    let local = acceptor.local_addr();
    if let Some(address) = local.first().and_then(|address| address.as_socket_addr()) {
        tracing::info!("listening on http://{address}");
    }
    let closing = etiquette.clone();
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            async move {
                shutdown.await;
                // Open event streams would hold graceful shutdown until the timeout.
                closing.close_event_streams();
            },
            Some(Duration::from_secs(10)),
        )
        .await?;

    let report = etiquette.release_timeout(support::drain_deadline()).await;
    tracing::info!("released: {report}");
    Ok(())
}
