//! A job waiting outside the line for its time, on a timer of its own: a
//! retry's backoff (when its backend keeps it [here](crate::backend::Backoff::Here)),
//! or the delay of a task added to run later. It holds its
//! queue place, no slot and no worker; when the timer fires it rejoins the
//! line. Cancelled meanwhile (by its handle or a release deadline), or
//! dropped unpolled by an executor, it is settled as cancelled.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{Either, select};

use crate::api::spawner::BoxFuture;
use crate::backend::{Backend, Backoff, TaskRef};
use crate::engine::attempt::{Accepted, InHand};
use crate::engine::guard::guarded;
use crate::engine::shared::{Outcome, Shared};
use crate::engine::worker::act;
use crate::events::EventKind;
use crate::{TaskError, TaskId};

/// Waits out `sleep` (made by the caller, whose failure is the caller's to
/// report), then puts `job` back in line.
pub(crate) fn rejoin_after<B: Backend>(
    job: Accepted,
    shared: &Arc<Shared<B>>,
    sleep: BoxFuture<()>,
) {
    // Made before the timer future, so that a timer the executor drops
    // unpolled still settles the task.
    let mut in_hand = InHand::new(job, Arc::clone(shared));
    let wait = async move {
        // The cell alone is borrowed across the wait: a job is not `Sync`.
        let waited = match in_hand.job.as_ref().map(|job| &job.cell) {
            Some(cell) => {
                let cancelled = pin!(cell.cancel.fired());
                matches!(select(sleep, cancelled).await, Either::Left(_))
            }
            None => false,
        };
        if waited && let Some(job) = in_hand.job.take() {
            match in_hand.shared.backlog.rejoin(job) {
                Ok(summon) => act(&in_hand.shared, summon),
                // Sealed by a release deadline, or cancelled: settled as
                // cancelled.
                Err(refused) => refused.cancel(&in_hand.shared),
            }
        }
        // Otherwise dropping `in_hand` settles it as cancelled.
    };
    // If the executor refuses, or the spawner panics, the dropped future
    // settles the task.
    let _ = guarded("the spawner", || shared.spawner.spawn(Box::pin(wait)));
}

/// Holds a task added with a delay until its time, then puts it in line.
pub(crate) fn schedule<B: Backend>(job: Accepted, shared: &Arc<Shared<B>>, delay: Duration) {
    match guarded("the spawner's timer", || shared.spawner.sleep(delay)) {
        Ok(sleep) => rejoin_after(job, shared, sleep),
        // Accepted already: reported as the task's panic, never lost.
        Err(message) => job.finish(shared, Outcome::Failed(TaskError::panicked(message))),
    }
}

/// Attempt `attempt` of the running `job` failed with `error`, and it is
/// to try again after `delay`: it waits here, on a timer, or in its
/// backend's store, as the backend decides. Either way its slot is free.
pub(crate) fn retry<B: Backend>(
    job: Accepted,
    shared: &Arc<Shared<B>>,
    (attempt, delay): (u32, Duration),
    error: TaskError,
) {
    let cell = &job.cell;
    let backoff = shared
        .backend
        .retrying(TaskRef::new(cell), attempt, delay, &error);
    if backoff == Backoff::Stored {
        announce(shared, cell.id, (attempt, delay), &error);
        // Its status here stays what it was when it left: waiting to retry.
        cell.set_retrying(delay, error);
        job.hand_back(shared);
        return;
    }
    // Made first: a timer the spawner cannot make fails the task, which
    // is still running and so simply settles.
    let sleep = match guarded("the spawner's timer", || shared.spawner.sleep(delay)) {
        Ok(sleep) => sleep,
        Err(message) => {
            job.finish(shared, Outcome::Failed(TaskError::panicked(message)));
            return;
        }
    };
    announce(shared, cell.id, (attempt, delay), &error);
    // Before the task leaves RUNNING, so that a reader seeing it wait
    // finds why.
    cell.set_retrying(delay, error);
    if !shared.backlog.enter_backoff(cell) {
        // Cannot happen: only the holder moves a task out of RUNNING.
        // Settles it if somehow still unsettled.
        job.cancel(shared);
        return;
    }
    shared.record_retry();
    rejoin_after(job, shared, sleep);
}

/// Logs and publishes that attempt `attempt` of task `id` failed with
/// `error`, and the next comes after `delay`.
fn announce<B: Backend>(
    shared: &Shared<B>,
    id: TaskId,
    (attempt, delay): (u32, Duration),
    error: &TaskError,
) {
    tracing::warn!(attempt, ?delay, %error, "attempt failed, will retry");
    shared.events.publish(id, || EventKind::Retrying {
        attempt,
        backoff: delay,
        error: error.to_string(),
    });
}
