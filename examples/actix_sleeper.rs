//! Hands a three-second sleep to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin actix_sleeper`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`) and `curl http://127.0.0.1:8000/tasks/1`

#[path = "support.rs"]
mod support;

use actix_web::{HttpResponse, web};
use etiquette_actix::{Decorum, Etiquette, TaskRejected};

async fn add_task(decorum: Decorum) -> Result<HttpResponse, TaskRejected> {
    let task = decorum.add_task(support::sleep_three_seconds()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("x-task-id", task.id().to_string()))
        .body("OK"))
}

// A multi-threaded tokio runtime for `main`: the queue runs its tasks here,
// not on the workers' single-threaded runtimes.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    // Built once, outside the app, which each worker builds for itself.
    let etiquette = Etiquette::initiate(16)?;

    let queue = etiquette.clone();
    let routes = move |app: &mut web::ServiceConfig| {
        app.app_data(web::ThinData(queue.clone()))
            .route("/add-task", web::get().to(add_task))
            .route("/tasks/{id}", web::get().to(support::actix::task_status))
            // The baseline the load script compares `/add-task` with.
            .route("/noop", web::get().to(|| async { "OK" }));
    };
    support::actix::serve(routes, shutdown).await?;
    support::release(&etiquette).await;
    Ok(())
}
