//! A worker is one concurrency slot: it takes jobs off the queue in order and
//! runs them one at a time. `max_concurrent_tasks` workers exist, so the bound
//! holds by construction and no task needs a spawn of its own.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;

use crate::shared::Shared;

/// Runs jobs until the queue is closed and empty. The worker holds `slot`
/// for its whole life, however that ends.
pub(crate) async fn work(shared: Arc<Shared>, slot: OwnedSemaphorePermit) {
    let _slot = slot;
    while let Ok(job) = shared.backlog.recv().await {
        job.run().await;
    }
}
