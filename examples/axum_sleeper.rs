//! Hands a three-second sleep to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_sleeper`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`) and `curl http://127.0.0.1:8000/tasks/1`

#[path = "support.rs"]
mod support;

use axum::Router;
use axum::routing::get;
use etiquette_axum::{Decorum, Etiquette, TaskRejected};

async fn add_task(
    decorum: Decorum,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum.add_task(support::sleep_three_seconds()).await?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    let etiquette = Etiquette::initiate(16)?;
    let app = Router::new()
        .route("/add-task", get(add_task))
        .route("/tasks/{id}", get(support::axum::task_status))
        // The baseline the load script compares `/add-task` with.
        .route("/noop", get(|| async { "OK" }))
        .with_state(etiquette.clone());

    support::axum::serve(app, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
