//! Jobs that report progress, followed live in the browser over
//! Server-Sent Events.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_jobs`
//! then open <http://127.0.0.1:8000/> and press the button, or:
//! `curl -i -X POST http://127.0.0.1:8000/jobs` (202, `Location: /jobs/1`)
//! and `curl -N http://127.0.0.1:8000/jobs/1/events`; the queue's metrics
//! in Prometheus text format: `curl http://127.0.0.1:8000/metrics`.

#[path = "support.rs"]
mod support;

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use etiquette_axum::sse::{self, LastEventId};
use etiquette_axum::{Decorum, TaskId, TaskRejected};
use metrics_exporter_prometheus::PrometheusBuilder;

/// Starts a job: 202 Accepted, its id, and where to follow it.
async fn start_job(decorum: Decorum) -> Result<impl IntoResponse, TaskRejected> {
    let job = decorum.task_with_context(support::job).add().await?;
    let id = job.id();
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/jobs/{id}"))],
        Json(serde_json::json!({ "id": id, "events": format!("/jobs/{id}/events") })),
    ))
}

async fn job_events(
    decorum: Decorum,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> impl IntoResponse {
    sse::task_events(&decorum, id, last).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    // Installed before the queue is built, which registers its metrics.
    let prometheus = PrometheusBuilder::new().install_recorder()?;
    let etiquette = support::jobs_queue().name("jobs").build()?;
    let app = Router::new()
        .route("/", get(|| async { Html(support::JOBS_PAGE) }))
        .route("/jobs", post(start_job))
        .route("/jobs/{id}", get(support::axum::task_status))
        .route("/jobs/{id}/events", get(job_events))
        .route("/metrics", get(move || async move { prometheus.render() }))
        .with_state(etiquette.clone());

    let shutdown = support::closing_event_streams(shutdown, etiquette.clone());
    support::axum::serve(app, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
