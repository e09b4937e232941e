//! The in-memory store, the engine's first [`Store`]: what the queue knows
//! of each task, kept in this process. Accepting a task (`enqueue`), the
//! registry finding tasks' cells by id, the unique keys of live tasks, the
//! event hub, and the timers of tasks waiting to start or retry (`later`).
//!
//! The engine reaches the store only through [`Memory`]'s methods, one per
//! thing that happens to a task (accepted, started, progress, retrying,
//! settled) or is asked of it (find, subscribe): the line a durable backend
//! will implement in its own way.

pub(crate) mod enqueue;
pub(crate) mod later;
pub(crate) mod registry;
pub(crate) mod unique;

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::engine::attempt::Accepted;
use crate::engine::cell::TaskCell;
use crate::engine::guard::guarded;
use crate::engine::shared::{Outcome, Shared};
use crate::engine::store::Store;
use crate::events::{EventKind, Events};
use crate::{Subscription, TaskError, TaskId, TaskStatus};
use registry::Registry;
use unique::{Keys, Reservation, UniqueKeys};

pub(crate) struct Memory {
    registry: Registry,
    unique: UniqueKeys,
    events: Events,
}

impl Memory {
    pub(crate) fn new(status_retention: usize, live: usize, event_buffer: usize) -> Self {
        Self {
            registry: Registry::new(status_retention, live),
            unique: UniqueKeys::default(),
            events: Events::new(event_buffer),
        }
    }

    /// A task accepted under `id`, to start at once or at `start`: its
    /// cell, registered and announced, and the older cell the registry
    /// forgot for it, if any.
    #[inline]
    pub(crate) fn accepted(
        &self,
        id: TaskId,
        start: Option<SystemTime>,
    ) -> (Arc<TaskCell>, Option<Arc<TaskCell>>) {
        // Each made straight into its allocation: a cell is too big to copy.
        let cell = match start {
            None => Arc::new(TaskCell::new(id)),
            Some(at) => Arc::new(TaskCell::scheduled(id, at)),
        };
        let forgotten = self.registry.insert(Arc::clone(&cell));
        self.events.publish(id, || match start {
            None => EventKind::Queued,
            Some(run_at) => EventKind::Scheduled { run_at },
        });
        (cell, forgotten)
    }

    /// The cell of a task still unfinished or retained.
    pub(crate) fn find(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        self.registry.get(id)
    }

    /// Held while a task with a unique key is checked and accepted.
    pub(crate) fn keys(&self) -> MutexGuard<'_, Keys> {
        self.unique.lock()
    }

    /// See [`UniqueKeys::reserve`].
    pub(crate) fn reserve_key(&self) -> Reservation<'_> {
        self.unique.reserve()
    }

    /// Every task's events after `after`, then live ones.
    pub(crate) fn subscribe(&self, after: Option<u64>) -> Subscription {
        self.events.subscribe(after)
    }

    /// One task's events after `after`, until its final event.
    pub(crate) fn subscribe_task(&self, id: TaskId, after: Option<u64>) -> Option<Subscription> {
        let cell = self.find(id)?;
        Some(self.events.subscribe_task(cell, after))
    }
}

impl Store for Memory {
    #[inline]
    fn started(&self, cell: &TaskCell, attempt: u32) {
        self.events
            .publish(cell.id, || EventKind::Started { attempt });
    }

    #[inline]
    fn progress(&self, cell: &TaskCell, fraction: Option<f32>, message: Option<String>) {
        self.events
            .publish_progress(cell, || EventKind::Progress { fraction, message });
    }

    /// Frees the slot, waits out the backoff on a timer of its own, then
    /// puts the task back in line. Cancellation during the wait settles it.
    fn retry(shared: &Arc<Shared>, job: Accepted, attempt: u32, delay: Duration, error: TaskError) {
        // Made first: a timer the spawner cannot make fails the task, which
        // is still running and so simply settles.
        let sleep = match guarded("the spawner's timer", || shared.spawner.sleep(delay)) {
            Ok(sleep) => sleep,
            Err(message) => {
                job.finish(shared, Outcome::Failed(TaskError::panicked(message)));
                return;
            }
        };
        tracing::warn!(attempt, ?delay, %error, "attempt failed, will retry");
        let cell = &job.cell;
        shared
            .store
            .events
            .publish(cell.id, || EventKind::Retrying {
                attempt,
                backoff: delay,
                error: error.to_string(),
            });
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
        later::rejoin_after(job, shared, sleep);
    }

    #[inline]
    fn settled(&self, cell: &TaskCell, status: TaskStatus) -> Vec<Arc<TaskCell>> {
        // Published before the status, so that a subscriber who finds the
        // task finished knows its final event was already published.
        self.events.publish_final(cell, &status);
        // Ranked first: a reader who finds the outcome finds it retained.
        let forgotten = self.registry.finished(cell);
        // Free before the outcome is published: whoever sees the task
        // finished may add another with its key.
        self.unique.release(cell.id);
        cell.finish(status);
        forgotten
    }

    fn cancel_unfinished(&self) {
        self.registry.for_each_unfinished(|cell| cell.cancel.fire());
    }

    fn close_events(&self) {
        self.events.close();
    }
}
