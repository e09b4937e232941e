//! A worker is one concurrency slot: it claims jobs from the line in order
//! and runs them one at a time. At most `max_concurrent_tasks` exist, so the
//! bound holds by construction and no task needs a spawn of its own. They
//! start on demand and retire when enough others are idle (see `backlog`).

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::task::Poll;

use crate::SpawnError;
use crate::backend::Backend;
use crate::engine::backlog::{Claim, Summon};
use crate::engine::shared::Shared;
use crate::engine::signal::Signal;

/// Jobs a worker runs in a row before letting the executor run something
/// else: a stream of tasks that never wait must not starve its thread.
const RUN_BEFORE_YIELDING: u32 = 64;

/// Where an idle worker waits to be woken: a signal re-armed each time it
/// parks (under the line's lock) and fired by whoever wakes it.
pub(crate) type Parker = Signal;

/// A worker's membership of the pool. Dropped without having stopped (its
/// executor shut down or refused to start it, or a panic around a task
/// unwound it), it takes the worker out of the line's count, summons
/// another if need be, and tells a release waiting for the workers.
struct OnDuty<B: Backend> {
    shared: Arc<Shared<B>>,
    parker: Arc<Parker>,
    /// Woken or just started, and not yet looked at the line.
    coming: bool,
    /// Whether it ever claimed a job: only such a worker can have been
    /// unwound by a panic around a task.
    ran: bool,
    stopped: bool,
}

impl<B: Backend> Drop for OnDuty<B> {
    fn drop(&mut self) {
        if !self.stopped {
            // Unwinding: every piece of user code in a task is guarded, but
            // not what runs around it (a tracing subscriber, a metrics
            // recorder). Such a panic settled the task in hand as panicked
            // (see `InHand`) and ends this worker (its executor reports the
            // panic); another is summoned if work waits. Catching it here
            // instead of per poll costs the happy path nothing. Otherwise
            // the executor dropped the worker: it is lost.
            // A worker that never ran, dropped while a panic unwinds, is a
            // replacement the executor would not run (a runtime dropped
            // during some other panic): replacing it in turn would recurse.
            let panicked = std::thread::panicking() && self.ran;
            if !panicked {
                self.shared.executor_lost.store(true, SeqCst);
            }
            let coming = self.coming || self.parker.is_fired();
            let summon = self.shared.backlog.worker_dropped(&self.parker, coming);
            act(&self.shared, summon);
            if panicked {
                act(&self.shared, self.shared.backlog.replace_worker());
            }
            self.shared.drained.notify_waiters();
        }
        self.shared.workers_changed.notify_waiters();
    }
}

/// Does what the line asked for, outside its lock.
pub(crate) fn act<B: Backend>(shared: &Arc<Shared<B>>, summon: Summon) {
    match summon {
        Summon::Nobody => {}
        Summon::Wake(parker) => parker.fire(),
        // On failure the worker's `OnDuty` has already left the pool.
        Summon::Start => drop(start(shared)),
    }
}

/// Starts a worker, already counted by the line.
pub(crate) fn start<B: Backend>(shared: &Arc<Shared<B>>) -> Result<(), SpawnError> {
    let duty = OnDuty {
        shared: Arc::clone(shared),
        parker: Arc::new(Parker::new()),
        coming: true,
        ran: false,
        stopped: false,
    };
    let worker = Box::pin(work(duty));
    // The spawner is user code: a panic in it is a refusal.
    catch_unwind(AssertUnwindSafe(|| shared.spawner.spawn(worker)))
        .unwrap_or(Err(SpawnError::new()))
}

/// Runs jobs until the line is closed and empty, or enough workers idle.
async fn work<B: Backend>(mut duty: OnDuty<B>) {
    let shared = Arc::clone(&duty.shared);
    let mut in_a_row = 0;
    loop {
        let (claim, summon) = shared
            .backlog
            .claim(&duty.parker, duty.coming, &shared.counters);
        duty.coming = false;
        act(&shared, summon);
        match claim {
            Claim::Run(job, attempt) => {
                duty.ran = true;
                job.run(&shared, attempt).await;
                in_a_row += 1;
                if in_a_row == RUN_BEFORE_YIELDING {
                    in_a_row = 0;
                    yield_once().await;
                }
            }
            Claim::Discard(job) => drop(job),
            Claim::Park => {
                in_a_row = 0;
                duty.parker.fired().await;
                duty.coming = true;
            }
            Claim::Stop => {
                duty.stopped = true;
                return;
            }
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
