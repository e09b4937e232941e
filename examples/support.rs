//! What every example shares: its address, its logs, its shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

/// How long, after the server stops, accepted tasks get to finish.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// 127.0.0.1, on the port in `PORT` (8000 when unset).
pub(crate) fn address() -> SocketAddr {
    let port = std::env::var("PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(8000);
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Logs to stdout at `info`, or as `RUST_LOG` says.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new requests, draining accepted tasks");
}
