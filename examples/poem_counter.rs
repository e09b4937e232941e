//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_counter`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`) and `curl http://127.0.0.1:8000/tasks/1`

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use etiquette_poem::{Decorum, Etiquette, TaskRejected};
use poem::web::Data;
use poem::{EndpointExt, IntoResponse, Response, Route, get, handler};

#[handler]
async fn add_task(
    decorum: Decorum,
    counter: Data<&Arc<AtomicU64>>,
) -> Result<Response, TaskRejected> {
    let task = decorum
        .add_task(support::count(Arc::clone(&counter)))
        .await?;
    Ok("OK"
        .with_header("x-task-id", task.id().to_string())
        .into_response())
}

#[handler]
fn noop() -> &'static str {
    "OK"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    let etiquette = Etiquette::initiate(16)?;
    let app = Route::new()
        .at("/add-task", get(add_task))
        .at("/tasks/:id", get(support::poem::task_status))
        // The baseline the load script compares `/add-task` with.
        .at("/noop", get(noop))
        .data(etiquette.clone())
        .data(Arc::new(AtomicU64::new(0)));

    support::poem::serve(app, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
