//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`.

#[path = "support.rs"]
mod support;

use etiquette_poem::sse::{self, LastEventId};
use etiquette_poem::{Decorum, TaskId, TaskRejected};
use poem::http::{StatusCode, header};
use poem::web::{Html, Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler, post};

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
async fn job_events(
    decorum: Decorum,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> poem::Result<Response> {
    Ok(sse::task_events(&decorum, id, last).await?)
}

#[handler]
fn page() -> Html<&'static str> {
    Html(support::JOBS_PAGE)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    let etiquette = support::jobs_queue().build()?;
    let app = Route::new()
        .at("/", get(page))
        .at("/jobs", post(start_job))
        .at("/jobs/:id", get(support::poem::task_status))
        .at("/jobs/:id/events", get(job_events))
        .data(etiquette.clone());

    // Open event streams would otherwise hold graceful shutdown until its
    // ten seconds run out.
    let shutdown = support::closing_event_streams(shutdown, etiquette.clone());
    support::poem::serve(app, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
