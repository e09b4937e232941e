//! The jobs a claimer handed out and not yet heard back of, shared by the
//! claim loop (which renews their leases, and claims only as they leave
//! room) and the consumer (which says when each is done).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// Jobs claimed and not yet reported done, by id, with the attempt held:
/// shared with the consumer.
#[derive(Debug, Default)]
pub(super) struct Held {
    ids: Mutex<HashMap<i64, i32>>,
    /// Notified when a job is done: room for another.
    pub(super) freed: Notify,
    /// Set once the process releases its queue: no more claims, while the
    /// leases of held jobs are still renewed.
    pub(super) stopped: AtomicBool,
    /// Set while a claim is under way (from before it looks at `stopped`
    /// until its jobs are delivered), so that stopping can wait for it.
    pub(super) claiming: AtomicBool,
    /// Notified when a claim ends.
    pub(super) claimed: Notify,
}

impl Held {
    pub(super) fn ids(&self) -> MutexGuard<'_, HashMap<i64, i32>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`Claimer::done`](super::Claimer::done).
    pub(super) fn done(&self, id: i64, attempt: i32) {
        let mut ids = self.ids();
        if ids.get(&id) == Some(&attempt) {
            ids.remove(&id);
        }
        drop(ids);
        self.freed.notify_one();
    }
}

/// What the consumer tells the claimer of the jobs it was given.
#[derive(Debug, Clone)]
pub(crate) struct Room(pub(super) Arc<Held>);

impl Room {
    /// See [`Claimer::done`](super::Claimer::done).
    pub(crate) fn done(&self, id: i64, attempt: i32) {
        self.0.done(id, attempt);
    }
}
