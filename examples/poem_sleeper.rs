//! Hands a three-second sleep to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_sleeper`
//! then: `curl -i http://127.0.0.1:8000/add-task` (the new task's id is in
//! `x-task-id`) and `curl http://127.0.0.1:8000/tasks/1`

#[path = "support.rs"]
mod support;

use std::time::Duration;

use etiquette_poem::{Decorum, Etiquette, TaskId, TaskRejected, TaskStatus};
use poem::error::NotFoundError;
use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::web::{Json, Path};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler};

#[handler]
async fn add_task(decorum: Decorum) -> Result<Response, TaskRejected> {
    let task = decorum
        .add_task(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tracing::info!("task done");
        })
        .await?;
    Ok("OK"
        .with_header("x-task-id", task.id().to_string())
        .into_response())
}

/// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`.
#[handler]
async fn task_status(decorum: Decorum, Path(id): Path<TaskId>) -> poem::Result<Json<TaskStatus>> {
    let task = decorum.handle(id).ok_or(NotFoundError)?;
    Ok(Json(task.status()))
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
        .at("/tasks/:id", get(task_status))
        // The baseline the load script compares `/add-task` with.
        .at("/noop", get(noop))
        .data(etiquette.clone());

    // Bound before logging, so the log never announces a port not yet open.
    let acceptor = TcpListener::bind(support::address())
        .into_acceptor()
        .await?;
    let local = acceptor.local_addr();
    if let Some(address) = local.first().and_then(|address| address.as_socket_addr()) {
        tracing::info!("listening on http://{address}");
    }
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await?;

    let report = etiquette.release_timeout(support::drain_deadline()).await;
    tracing::info!("released: {report}");
    Ok(())
}
