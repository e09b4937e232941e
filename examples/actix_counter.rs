//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin actix_counter`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`) and `curl http://127.0.0.1:8000/tasks/1`

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};
use etiquette_actix::{Decorum, Etiquette, TaskId, TaskRejected};

async fn add_task(
    decorum: Decorum,
    counter: web::ThinData<Arc<AtomicU64>>,
) -> Result<HttpResponse, TaskRejected> {
    let counter = Arc::clone(&counter);
    let task = decorum
        .add_task(async move {
            let current_count = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::info!(current_count);
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("x-task-id", task.id().to_string()))
        .body("OK"))
}

/// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`.
async fn task_status(decorum: Decorum, id: web::Path<TaskId>) -> HttpResponse {
    match decorum.handle(*id) {
        Some(task) => HttpResponse::Ok().json(task.status()),
        None => HttpResponse::NotFound().finish(),
    }
}

// A multi-threaded tokio runtime for `main`: the queue runs its tasks here,
// not on the workers' single-threaded runtimes.
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let shutdown = support::shutdown_signal();
    // Built once, outside the factory, which runs once per worker.
    let etiquette = Etiquette::initiate(16)?;
    let counter = Arc::new(AtomicU64::new(0));

    let queue = etiquette.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::ThinData(queue.clone()))
            .app_data(web::ThinData(counter.clone()))
            .route("/add-task", web::get().to(add_task))
            .route("/tasks/{id}", web::get().to(task_status))
            // The baseline the load script compares `/add-task` with.
            .route("/noop", web::get().to(|| async { "OK" }))
    })
    .shutdown_signal(shutdown)
    .bind(support::address())?;
    tracing::info!("listening on http://{}", server.addrs()[0]);
    server.run().await?;

    let report = etiquette.release_timeout(support::drain_deadline()).await;
    tracing::info!("released: {report}");
    Ok(())
}
