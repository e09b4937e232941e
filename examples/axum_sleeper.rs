//! Hands a three-second sleep to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_sleeper`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`), `curl http://127.0.0.1:8000/tasks/1` and
//! `curl http://127.0.0.1:8000/stats`. With
//! `DATABASE_URL` set, the jobs are kept in PostgreSQL.

#[path = "support.rs"]
mod support;

use axum::Router;
use axum::routing::get;
use etiquette_axum::core::backend::Backend;
use etiquette_axum::{Decorum, Etiquette, TaskRejected};

async fn add_task<B: Backend>(
    decorum: Decorum<B>,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum.job(support::SleepThreeSeconds).add().await?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

#[tokio::main]
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    let queue = Etiquette::builder().max_concurrent_tasks(16);
    // On PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
    support::build_and_serve(queue, Sleeper, stopping).await
}

/// The app, on whichever backend `main` built its queue.
struct Sleeper;

impl support::App for Sleeper {
    async fn serve<B: Backend>(
        self,
        etiquette: Etiquette<B>,
        stopping: support::Stopping,
    ) -> Result<(), support::Failed> {
        let app = Router::new()
            .route("/add-task", support::axum::add_task(add_task::<B>))
            .route("/tasks/{id}", get(support::axum::task_status::<B>))
            .route("/stats", get(support::axum::stats::<B>))
            // The baseline the load script compares `/add-task` with.
            .route("/noop", get(|| async { "OK" }))
            .with_state(etiquette.clone());

        let serving = support::axum::serve(app, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
