//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_counter`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`), `curl http://127.0.0.1:8000/tasks/1` and
//! `curl http://127.0.0.1:8000/stats`. With
//! `DATABASE_URL` set, the jobs are kept in PostgreSQL.

#[path = "support.rs"]
mod support;

use etiquette_poem::core::backend::Backend;
use etiquette_poem::{Decorum, Etiquette, TaskRejected};
use poem::{EndpointExt, Response, Route, get, handler};

#[handler]
async fn add_task<B: Backend>(decorum: Decorum<B>) -> Result<Response, TaskRejected> {
    let task = decorum.job(support::Count).add().await?;
    Ok(support::poem::added(task.id()))
}

#[handler]
fn noop() -> &'static str {
    "OK"
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
        let app = Route::new()
            .at("/add-task", support::poem::add_task(add_task::<B>::default))
            .at(
                "/tasks/:id",
                get(support::poem::task_status::<B>::default()),
            )
            .at("/stats", get(support::poem::stats::<B>::default()))
            // The baseline the load script compares `/add-task` with.
            .at("/noop", get(noop))
            .data(etiquette.clone());

        let serving = support::poem::serve(app, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
