//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin actix_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`; the queue in this
//! process: `curl http://127.0.0.1:8000/stats`.
//!
//! On PostgreSQL (`DATABASE_URL` set): several servers share the jobs, and
//! <http://127.0.0.1:8000/?job=1> follows job 1 wherever it runs.

#[path = "support.rs"]
mod support;

use actix_web::http::header;
use actix_web::{HttpResponse, Responder, web};
use etiquette_actix::core::backend::Backend;
use etiquette_actix::sse::{self, LastEventId, UnknownTask};
use etiquette_actix::{Decorum, Etiquette, TaskId, TaskRejected};

/// Starts a job: 202 Accepted, its id, and where to follow it.
async fn start_job<B: Backend>(decorum: Decorum<B>) -> Result<HttpResponse, TaskRejected> {
    let job = decorum.job(support::TenSteps).add().await?;
    let id = job.id();
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/jobs/{id}")))
        .json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") })))
}

async fn job_events<B: Backend>(
    decorum: Decorum<B>,
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
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    // Built once, outside the app, which each worker builds for itself: on
    // PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
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
        let queue = etiquette.clone();
        let routes = move |app: &mut web::ServiceConfig| {
            app.app_data(web::ThinData(queue.clone()))
                .service(support::actix::get("/", page))
                .service(web::resource("/jobs").route(web::post().to(start_job::<B>)))
                .service(support::actix::get(
                    "/jobs/{id}",
                    support::actix::task_status::<B>,
                ))
                .service(support::actix::get("/jobs/{id}/events", job_events::<B>))
                .service(support::actix::get("/stats", support::actix::stats::<B>));
        };
        let serving = support::actix::serve(routes, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
