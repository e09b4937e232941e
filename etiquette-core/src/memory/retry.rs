//! Retrying by hand a typed job of the in-memory queue that ended failed,
//! timed out or cancelled (as River's `JobRetry` and Oban's `retry_job`
//! do): the job goes back in line, due now, under the same id, for its
//! next attempt.
//!
//! What makes the job again is kept with its task from its acceptance
//! ([`Kept`], in its cell): dropped when it succeeds, kept when it fails or
//! is cancelled, for as long as the registry keeps the task (the queue's
//! `status_retention`) or a handle holds it. A closure task keeps nothing:
//! its work ends with it.
//!
//! The task's next life is a new cell under the same id: the registry
//! finds it in place of the old one, and the old one points to it, so
//! that handles on the old life follow (see `LocalTask`). It is accepted
//! like a task added now: it takes a queue place (or is refused when the
//! queue is full or released), is counted accepted again, announced
//! `Queued`, and settled once by the engine.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::engine::attempt::Accepted;
use crate::engine::cell::{Lives, TaskCell};
use crate::engine::intake::{Refund, try_place};
use crate::engine::shared::Shared;
use crate::engine::work::{Remake, Work};
use crate::engine::worker;
use crate::events::EventKind;
use crate::memory::enqueue::forget;
use crate::{AddTaskError, RetryPolicy, RetryTaskError, TaskHandle, TaskId, TaskStatus};

/// What the in-memory queue keeps of a typed job to make it again.
pub(crate) struct Kept {
    pub(crate) remake: Remake,
    pub(crate) policy: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
    pub(crate) priority: i16,
    pub(crate) kind: Option<&'static str>,
    pub(crate) unique_key: Option<Box<str>>,
}

impl Kept {
    /// The same job for the next life, whose policy allows at least one
    /// attempt after the `attempts` made (as Oban and River give a job
    /// that used up its attempts one more).
    fn again(&self, attempts: u32) -> Box<Self> {
        let max_attempts = self.policy.attempts().max(attempts.saturating_add(1));
        Box::new(Self {
            remake: Arc::clone(&self.remake),
            policy: self.policy.clone().max_attempts(max_attempts),
            timeout: self.timeout,
            priority: self.priority,
            kind: self.kind,
            unique_key: self.unique_key.clone(),
        })
    }

    /// The work of the next life's attempts.
    fn work(&self) -> Work {
        let remake = Arc::clone(&self.remake);
        Work::retryable(
            Box::new(move |context| remake(context)),
            self.policy.clone(),
            self.kind,
        )
    }
}

/// Puts task `id` back in line for its next attempt, if it ended failed,
/// timed out or cancelled and is a typed job; see
/// [`Decorum::retry_task`](crate::Decorum::retry_task).
pub(crate) fn retry(shared: &Arc<Shared>, id: TaskId) -> Result<TaskHandle, RetryTaskError> {
    let Some(found) = shared.backend.find(id) else {
        return Err(RetryTaskError::Unknown(id));
    };
    // The registry holds the latest life; this is a step that never waits.
    let old = found.latest();
    let refused_by_state = || match old.outcome() {
        None => Some(RetryTaskError::NotFinished(id)),
        Some(TaskStatus::Succeeded { .. }) => Some(RetryTaskError::Succeeded(id)),
        Some(_) => None,
    };
    let Some(lives) = old.lives() else {
        // A closure task keeps nothing to make it again.
        return Err(refused_by_state().unwrap_or(RetryTaskError::NotRetriable(id)));
    };
    // Held until the next life is in line: of two retries, one wins.
    let mut kept = lives.kept();
    if old.next_life().is_some() {
        return Err(RetryTaskError::NotFinished(id)); // the other won
    }
    if let Some(refused) = refused_by_state() {
        return Err(refused);
    }
    let Some(recipe) = kept.as_ref() else {
        return Err(RetryTaskError::NotRetriable(id));
    };
    try_place(shared).map_err(|error| match error {
        AddTaskError::Full => RetryTaskError::Full,
        _ => RetryTaskError::Released,
    })?;
    // Counted before joining, as an add is (see `enqueue`).
    shared.counters.accepted.fetch_add(1, SeqCst);
    let refund = Refund(&**shared);
    let attempts = old.attempts();
    let next = recipe.again(attempts);
    let work = next.work();
    let (timeout, priority, kind) = (next.timeout, next.priority, next.kind);
    // Held, when the job has a key, until the next life holds it.
    let mut keys = next.unique_key.as_ref().map(|_| shared.backend.keys());
    if let (Some(keys), Some(key)) = (&keys, &next.unique_key)
        && let Some(holder) = keys.holder(key)
    {
        return Err(RetryTaskError::UniqueKeyHeld {
            task: id,
            holder: holder.id,
        }); // `refund` gives the place and the acceptance back
    }
    let reservation = keys.as_ref().map(|_| shared.backend.reserve_key());
    let unique_key = next.unique_key.clone();
    let cell = Arc::new(TaskCell::offered(id, attempts).keeping(Some(Lives::new(next))));
    let mut forgotten = None;
    // Registered, linked from the old life and announced under the line's
    // lock, before a worker can claim it, as an added task is.
    let make = || {
        let span = Accepted::span(id, kind);
        forgotten = shared.backend.replace(Arc::clone(&cell));
        lives.set_next(Arc::clone(&cell));
        shared
            .events
            .publish(id, || EventKind::Queued { job: kind });
        Accepted::new(Arc::clone(&cell), work, timeout, priority, span)
    };
    let joined = shared.backlog.join_again(make);
    std::mem::forget(refund);
    let Ok(summon) = joined else {
        // Only once release has closed the line: never accepted.
        shared.backlog.refund_place();
        shared.unaccept();
        return Err(RetryTaskError::Released);
    };
    if let (Some(keys), Some(reservation), Some(key)) = (keys.as_mut(), reservation, unique_key) {
        reservation.hold(keys, key, &cell);
    }
    drop(keys);
    // The old life's is of no more use: its retry is this one.
    let old_recipe = kept.take();
    drop(kept);
    worker::act(shared, summon);
    shared.metrics.accepted(|| shared.backlog.waiting().queued);
    forget((old_recipe, forgotten));
    Ok(TaskHandle::local(cell, shared, false))
}
