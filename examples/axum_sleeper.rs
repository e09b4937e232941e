//! Hands a three-second sleep to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin axum_sleeper`
//! then: `curl http://127.0.0.1:8000/add-task`

#[path = "support.rs"]
mod support;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use etiquette_axum::{Decorum, Etiquette, TaskRejected};

async fn add_task(decorum: Decorum) -> Result<&'static str, TaskRejected> {
    decorum
        .add_task(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tracing::info!("task done");
        })
        .await?;
    Ok("OK")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let etiquette = Etiquette::initiate(16)?;
    let app = Router::new()
        .route("/add-task", get(add_task))
        .with_state(etiquette.clone());

    let listener = tokio::net::TcpListener::bind(support::address()).await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(support::shutdown_signal())
        .await?;

    let report = etiquette.release_timeout(support::DRAIN_DEADLINE).await;
    tracing::info!("released: {report}");
    Ok(())
}
