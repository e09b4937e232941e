//! Taking a queue place for a task about to join the line, whoever brings
//! it (a handler adding it, a durable backend offering a job it claimed),
//! and giving it back if the task is not accepted after all.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::sync::{SemaphorePermit, TryAcquireError};

use crate::AddTaskError;
use crate::api::builder::OnFull;
use crate::backend::Backend;
use crate::engine::shared::Shared;

/// Takes a queue place for a task about to be added, as the queue's
/// [`OnFull`] says. The place is given back by the line when the task
/// leaves it (see `backlog`): no `Arc` of the semaphore travels with each
/// task, whose count producers and workers would otherwise both write.
pub(crate) async fn wait_for_place<B: Backend>(shared: &Shared<B>) -> Result<(), AddTaskError> {
    match shared.config.on_full {
        // With room in the queue, a plain CAS: no waiter node is built.
        OnFull::Wait if try_place(shared).is_ok() => Ok(()),
        OnFull::Wait => wait_until_placed(shared).await,
        OnFull::Reject => try_place(shared),
    }
}

/// Waits for a queue place whatever the queue's [`OnFull`]: for a job a
/// backend offers, which it would otherwise claim again at once.
pub(crate) async fn wait_until_placed<B: Backend>(shared: &Shared<B>) -> Result<(), AddTaskError> {
    let _waiting = AddWaiting::new(&shared.counters.adds_waiting);
    shared
        .backlog
        .places
        .acquire()
        .await
        .map(SemaphorePermit::forget)
        .map_err(|_closed| AddTaskError::Released)
}

/// One add waiting for a place, counted in `Stats::adds_waiting` for as
/// long as it waits, however the wait ends (placed, released, dropped).
struct AddWaiting<'a>(&'a AtomicU64);

impl<'a> AddWaiting<'a> {
    fn new(gauge: &'a AtomicU64) -> Self {
        gauge.fetch_add(1, Relaxed);
        Self(gauge)
    }
}

impl Drop for AddWaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Takes a queue place if one is free now.
pub(crate) fn try_place<B: Backend>(shared: &Shared<B>) -> Result<(), AddTaskError> {
    shared
        .backlog
        .places
        .try_acquire()
        .map(SemaphorePermit::forget)
        .map_err(|error| match error {
            TryAcquireError::NoPermits => AddTaskError::Full,
            TryAcquireError::Closed => AddTaskError::Released,
        })
}

/// Gives back an adder's place and acceptance if dropped: disarmed (by
/// `mem::forget`) once the task joined the line or was refused.
pub(crate) struct Refund<'a, B: Backend>(pub(crate) &'a Shared<B>);

impl<B: Backend> Drop for Refund<'_, B> {
    fn drop(&mut self) {
        self.0.backlog.refund_place();
        self.0.unaccept();
    }
}
