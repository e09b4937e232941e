//! What the examples' end-to-end tests share: a bound on every wait, and
//! small helpers to start an example. (A folder, so that cargo does not
//! take it for a test binary of its own.)

use std::future::IntoFuture;
use std::path::Path;
use std::time::Duration;

/// Awaits `future` for at most `bound`, failing the test with a message
/// naming `what` it waited for.
pub(crate) async fn within<F: IntoFuture>(bound: Duration, what: &str, future: F) -> F::Output {
    tokio::time::timeout(bound, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {bound:?} waiting for {what}"))
}

/// The example's name, for messages: its binary's file name.
pub(crate) fn name(binary: &str) -> &str {
    Path::new(binary)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(binary)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
