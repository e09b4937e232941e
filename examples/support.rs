//! What every example shares: its address, its logs, its shutdown signal.

use std::net::SocketAddr;
use std::time::Duration;

/// How long, after the server stops, accepted tasks get to finish:
/// `DRAIN_SECS`, 30 s by default.
pub(crate) fn drain_deadline() -> Duration {
    let seconds = std::env::var("DRAIN_SECS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

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

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled: call it before
/// announcing that the server listens, or a signal sent in between would
/// kill the process instead of stopping it gracefully.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
        async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    };
    #[cfg(not(unix))]
    let signals = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    async move {
        signals.await;
        tracing::info!("shutting down: no new requests, draining accepted tasks");
    }
}

/// The page every jobs example serves at `/`: a button starting a job and a
/// progress bar following its events.
#[allow(dead_code)] // only the jobs examples use it
pub(crate) const JOBS_PAGE: &str = include_str!("jobs.html");

/// How long each of a job's ten steps takes: `STEP_MS`, 300 ms by default.
#[allow(dead_code)] // only the jobs examples use it
pub(crate) fn step() -> Duration {
    let millis = std::env::var("STEP_MS")
        .ok()
        .and_then(|millis| millis.parse().ok())
        .unwrap_or(300);
    Duration::from_millis(millis)
}

/// A job of ten steps, reporting its progress after each.
#[allow(dead_code)] // only the jobs examples use it
pub(crate) async fn job(context: etiquette_core::TaskContext) {
    const STEPS: u32 = 10;
    for step in 1..=STEPS {
        tokio::time::sleep(self::step()).await;
        context.report(
            step as f32 / STEPS as f32,
            format!("step {step} of {STEPS}"),
        );
    }
}
