//! The setup the throughput bench and the measuring examples share, so that
//! their numbers compare: the same runtime, the same queue. (A folder, so
//! that cargo does not take it for a bench of its own; the examples include
//! it with `#[path]`.)

use etiquette_core::{Builder, Etiquette};
use tokio::runtime::Runtime;

/// Tokio's multi-threaded runtime on two worker threads, timers enabled.
#[allow(dead_code)] // `overload` gets the same from `#[tokio::main]`
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A queue running at most `limit` tasks at once, with room for `capacity`
/// more waiting.
pub(crate) fn queue(limit: usize, capacity: usize) -> Etiquette {
    Builder::new()
        .max_concurrent_tasks(limit)
        .queue_capacity(capacity)
        .build()
        .unwrap()
}
