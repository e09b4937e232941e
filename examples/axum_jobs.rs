//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`; the queue's metrics
//! in Prometheus text format: `curl http://127.0.0.1:8000/metrics`, and
//! the queue in this process: `curl http://127.0.0.1:8000/stats`.
//!
//! On PostgreSQL (`DATABASE_URL` set): several servers share the jobs, and
//! <http://127.0.0.1:8000/?job=1> follows job 1 wherever it runs.

#[path = "support.rs"]
mod support;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use etiquette_axum::core::backend::Backend;
use etiquette_axum::sse::{self, LastEventId};
use etiquette_axum::{Decorum, Etiquette, TaskId, TaskRejected};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Starts a job: 202 Accepted, its id, and where to follow it.
async fn start_job<B: Backend>(decorum: Decorum<B>) -> Result<impl IntoResponse, TaskRejected> {
    let job = decorum.job(support::TenSteps).add().await?;
    let id = job.id();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/jobs/{id}"))],
        Json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") })),
    ))
}

async fn job_events<B: Backend>(
    decorum: Decorum<B>,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> impl IntoResponse {
    sse::task_events(&decorum, id, last).await
}

#[tokio::main]
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    // Installed before the queue is built, which registers its metrics.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let queue = support::jobs_queue().name("jobs");
    // On PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
    support::build_and_serve(queue, Jobs { prometheus }, stopping).await
}

/// The app, on whichever backend `main` built its queue; `/metrics` renders
/// what `prometheus` records.
struct Jobs {
    prometheus: PrometheusHandle,
}

impl support::App for Jobs {
    async fn serve<B: Backend>(
        self,
        etiquette: Etiquette<B>,
        stopping: support::Stopping,
    ) -> Result<(), support::Failed> {
        let prometheus = self.prometheus;
        let app = Router::new()
            .route("/", get(|| async { Html(support::JOBS_PAGE) }))
            .route("/jobs", post(start_job::<B>))
            .route("/jobs/{id}", get(support::axum::task_status::<B>))
            .route("/jobs/{id}/events", get(job_events::<B>))
            .route("/stats", get(support::axum::stats::<B>))
            .route("/metrics", get(move || async move { prometheus.render() }))
            .with_state(etiquette.clone());

        let serving = support::axum::serve(app, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
