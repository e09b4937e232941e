//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin actix_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`.

#[path = "support.rs"]
mod support;

use actix_web::http::header;
use actix_web::{HttpResponse, Responder, web};
use etiquette_actix::sse::{self, LastEventId, UnknownTask};
use etiquette_actix::{Decorum, TaskId, TaskRejected};

/// Starts a job: 202 Accepted, its id, and where to follow it.
async fn start_job(decorum: Decorum) -> Result<HttpResponse, TaskRejected> {
    let job = decorum.task_with_context(support::job).add().await?;
    let id = job.id();
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/jobs/{id}")))
        .json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") })))
}

async fn job_events(
    decorum: Decorum,
    id: web::Path<TaskId>,
    last: LastEventId,
) -> Result<impl Responder, UnknownTask> {
    sse::task_events(&decorum, *id, last).await
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(support::JOBS_PAGE)
}

// A multi-threaded tokio runtime for `main`: the queue runs its tasks here,
// not on the workers' single-threaded runtimes.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    let etiquette = support::jobs_queue().build()?;

    let queue = etiquette.clone();
    let routes = move |app: &mut web::ServiceConfig| {
        app.app_data(web::ThinData(queue.clone()))
            .route("/", web::get().to(page))
            .route("/jobs", web::post().to(start_job))
            .route("/jobs/{id}", web::get().to(support::actix::task_status))
            .route("/jobs/{id}/events", web::get().to(job_events));
    };
    let shutdown = support::closing_event_streams(shutdown, etiquette.clone());
    support::actix::serve(routes, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
