//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_counter`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`), `curl http://127.0.0.1:8000/tasks/1` and
//! `curl http://127.0.0.1:8000/stats`. With
//! `DATABASE_URL` set, the jobs are kept in PostgreSQL.

#[path = "support.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use etiquette_axum::core::backend::Backend;
use etiquette_axum::{Decorum, Etiquette, TaskRejected};

async fn add_task<B: Backend>(
    decorum: Decorum<B>,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum.job(support::Count).add().await?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

/// What `/add-task` does, written by hand as etiquette replaces it: no
/// queue bound, no status to look up, nothing drained at shutdown. It
/// answers the same way, with an id, so that the load script compares like
/// with like.
async fn spawn_task() -> Result<([(&'static str, String); 1], &'static str), StatusCode> {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);
    static IDS: AtomicU64 = AtomicU64::new(0);
    let slot = SLOTS
        .acquire()
        .await
        .map_err(|_closed| StatusCode::SERVICE_UNAVAILABLE)?;
    let id = IDS.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::spawn(async move {
        support::count();
        drop(slot);
    });
    Ok(([("x-task-id", id.to_string())], "OK"))
}

#[tokio::main]
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    let queue = Etiquette::builder().max_concurrent_tasks(16);
    // On PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
    support::build_and_serve(queue, Counter, stopping).await
}

/// The app, on whichever backend `main` built its queue.
struct Counter;

impl support::App for Counter {
    async fn serve<B: Backend>(
        self,
        etiquette: Etiquette<B>,
        stopping: support::Stopping,
    ) -> Result<(), support::Failed> {
        let app = Router::new()
            .route("/add-task", support::axum::add_task(add_task::<B>))
            .route("/tasks/{id}", get(support::axum::task_status::<B>))
            .route("/stats", get(support::axum::stats::<B>))
            // The baselines the load script compares `/add-task` with: doing
            // nothing, and the hand-written `tokio::spawn` + `Semaphore`.
            .route("/noop", get(|| async { "OK" }))
            .route("/spawn-task", get(spawn_task))
            .with_state(etiquette.clone());

        let serving = support::axum::serve(app, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
