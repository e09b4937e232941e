//! A worker is one concurrency slot: it takes jobs off the queue in order and
//! runs them one at a time. `max_concurrent_tasks` workers exist, so the bound
//! holds by construction and no task needs a spawn of its own.

use async_channel::Receiver;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::job::Job;

/// Runs jobs until the queue is closed and empty. Once `cancel` fires, the
/// jobs still queued are dropped, which reports them cancelled. The worker
/// holds `slot` for its whole life, however that ends.
pub(crate) async fn work(
    jobs: Receiver<Job>,
    cancel: CancellationToken,
    slot: OwnedSemaphorePermit,
) {
    let _slot = slot;
    while let Ok(job) = jobs.recv().await {
        if cancel.is_cancelled() {
            drop(job);
            continue;
        }
        job.run(&cancel).await;
    }
}
