//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin actix_counter`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`), `curl http://127.0.0.1:8000/tasks/1` and
//! `curl http://127.0.0.1:8000/stats`. With
//! `DATABASE_URL` set, the jobs are kept in PostgreSQL.

#[path = "support.rs"]
mod support;

use actix_web::{HttpResponse, web};
use etiquette_actix::core::backend::Backend;
use etiquette_actix::{Decorum, Etiquette, TaskRejected};

async fn add_task<B: Backend>(decorum: Decorum<B>) -> Result<HttpResponse, TaskRejected> {
    let task = decorum.job(support::Count).add().await?;
    Ok(support::actix::added(task.id()))
}

// A multi-threaded tokio runtime for `main`: the queue runs its tasks here,
// not on the workers' single-threaded runtimes.
#[tokio::main]
async fn main() -> Result<(), support::Failed> {
    let stopping = support::start()?;
    let queue = Etiquette::builder().max_concurrent_tasks(16);
    // Built once, outside the app, which each worker builds for itself: on
    // PostgreSQL when `DATABASE_URL` is set, in memory otherwise.
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
        let queue = etiquette.clone();
        let routes = move |app: &mut web::ServiceConfig| {
            app.app_data(web::ThinData(queue.clone()))
                .service(support::actix::add_task(add_task::<B>))
                .service(support::actix::get(
                    "/tasks/{id}",
                    support::actix::task_status::<B>,
                ))
                .service(support::actix::get("/stats", support::actix::stats::<B>))
                // The baseline the load script compares `/add-task` with.
                .service(support::actix::get("/noop", || async { "OK" }));
        };
        let serving = support::actix::serve(routes, stopping.clone());
        support::run(serving, &etiquette, stopping).await
    }
}
