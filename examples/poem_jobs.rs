//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`; the queue in this
//! process: `curl http://127.0.0.1:8000/stats`.
//!
//! On PostgreSQL (`DATABASE_URL` set): several servers share the jobs, and
//! <http://127.0.0.1:8000/?job=1> follows job 1 wherever it runs.

#[path = "support.rs"]
mod support;

use etiquette_poem::core::backend::Backend;
use etiquette_poem::sse::{self, LastEventId};
use etiquette_poem::{Decorum, Etiquette, TaskId, TaskRejected};
use poem::http::{StatusCode, header};
use poem::web::{Html, Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler, post};

/// Starts a job: 202 Accepted, its id, and where to follow it.
#[handler]
async fn start_job<B: Backend>(decorum: Decorum<B>) -> Result<Response, TaskRejected> {
    let job = decorum.job(support::TenSteps).add().await?;
    let id = job.id();
    Ok(
        Json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") }))
            .with_status(StatusCode::ACCEPTED)
            .with_header(header::LOCATION, format!("/jobs/{id}"))
            .into_response(),
    )
}

#[handler]
async fn job_events<B: Backend>(
    decorum: Decorum<B>,
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
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    // On PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
    support::build_and_serve(support::jobs_queue(), Jobs, stopping).await
}

/// The app, on whichever backend `main` built its queue.
struct Jobs;

impl support::App for Jobs {
    async fn serve<B: Backend>(
        self,
        etiquette: Etiquette<B>,
        stopping: support::Stopping,
    ) -> Result<(), support::Failed> {
        let app = Route::new()
            .at("/", get(page))
            .at("/jobs", post(start_job::<B>::default()))
            .at("/jobs/:id", get(support::poem::task_status::<B>::default()))
            .at("/jobs/:id/events", get(job_events::<B>::default()))
            .at("/stats", get(support::poem::stats::<B>::default()))
            .data(etiquette.clone());

        let serving = support::poem::serve(app, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
