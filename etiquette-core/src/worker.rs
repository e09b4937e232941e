//! A worker is one concurrency slot: it takes jobs off the backlog in order
//! and runs them one at a time. `max_concurrent_tasks` workers exist, so the
//! bound holds by construction and no task needs a spawn of its own.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use tokio::sync::OwnedSemaphorePermit;

use crate::shared::Shared;

/// Jobs a worker runs in a row before letting the executor run something
/// else: a stream of tasks that never wait must not starve its thread.
const RUN_BEFORE_YIELDING: u32 = 64;

/// Runs jobs until the backlog is closed and empty. The worker holds `slot`
/// for its whole life, however that ends.
pub(crate) async fn work(shared: Arc<Shared>, slot: OwnedSemaphorePermit) {
    let _slot = slot;
    let mut in_a_row = 0;
    while let Some(job) = shared.backlog.pop().await {
        job.run(&shared).await;
        in_a_row += 1;
        if in_a_row == RUN_BEFORE_YIELDING {
            in_a_row = 0;
            yield_once().await;
        }
    }
}

/// Lets the executor run its other tasks before this one goes on.
async fn yield_once() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
