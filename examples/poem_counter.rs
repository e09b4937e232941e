//! Hands a counter increment to the queue on every request.
//!
//! Run with: `cargo run -p etiquette-examples --bin poem_counter`
//! then: `curl http://127.0.0.1:8000/add-task`

#[path = "support.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etiquette_poem::{Decorum, Etiquette, TaskRejected};
use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::web::Data;
use poem::{EndpointExt, Route, Server, get, handler};

#[handler]
async fn add_task(
    decorum: Decorum,
    counter: Data<&Arc<AtomicU64>>,
) -> Result<&'static str, TaskRejected> {
    let counter = Arc::clone(&counter);
    decorum
        .add_task(async move {
            let current_count = counter.fetch_add(1, Ordering::SeqCst) + 1;
            tracing::info!(current_count);
        })
        .await?;
    Ok("OK")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    support::init_tracing();
    let etiquette = Etiquette::initiate(16)?;
    let app = Route::new()
        .at("/add-task", get(add_task))
        .data(etiquette.clone())
        .data(Arc::new(AtomicU64::new(0)));

    // Bound before logging, so the log never announces a port not yet open.
    let acceptor = TcpListener::bind(support::address())
        .into_acceptor()
        .await?;
    let local = acceptor.local_addr();
    if let Some(address) = local.first().and_then(|address| address.as_socket_addr()) {
        tracing::info!("listening on http://{address}");
    }
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app,
            support::shutdown_signal(),
            Some(Duration::from_secs(10)),
        )
        .await?;

    let report = etiquette.release_timeout(support::DRAIN_DEADLINE).await;
    tracing::info!("released: {report}");
    Ok(())
}
