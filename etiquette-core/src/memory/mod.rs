//! The in-memory store: what the queue knows of each task, kept in this
//! process. Each task's cell (its phase and status), the registry finding
//! cells by id, the unique keys of live tasks, and the event hub.
//!
//! The engine reaches the store only through [`Memory`]'s methods, one per
//! thing that happens to a task (accepted, started, progress, retrying,
//! settled) or is asked of it (find, subscribe): the line a durable backend
//! will implement in its own way.

pub(crate) mod cell;
pub(crate) mod registry;
pub(crate) mod unique;

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::events::{EventKind, Events};
use crate::{Subscription, TaskError, TaskId, TaskStatus};
use cell::TaskCell;
use registry::Registry;
use unique::{Keys, Reservation, UniqueKeys};

pub(crate) struct Memory {
    registry: Registry,
    unique: UniqueKeys,
    events: Events,
}

/// Cells the registry forgot, to drop outside its locks.
pub(crate) type Forgotten = Vec<Arc<TaskCell>>;

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

    /// Attempt `attempt` of a task started.
    pub(crate) fn started(&self, cell: &TaskCell, attempt: u32) {
        self.events
            .publish(cell.id, || EventKind::Started { attempt });
    }

    /// A running task reported progress; dropped once it settled.
    pub(crate) fn progress(&self, cell: &TaskCell, fraction: Option<f32>, message: Option<String>) {
        self.events
            .publish_progress(cell, || EventKind::Progress { fraction, message });
    }

    /// Attempt `attempt` failed with `error`; the next starts after
    /// `backoff`. Recorded before the task leaves `RUNNING`, so that a
    /// reader seeing it wait finds why.
    pub(crate) fn retrying(
        &self,
        cell: &TaskCell,
        attempt: u32,
        backoff: Duration,
        error: TaskError,
    ) {
        self.events.publish(cell.id, || EventKind::Retrying {
            attempt,
            backoff,
            error: error.to_string(),
        });
        cell.set_retrying(backoff, error);
    }

    /// A task settled with `status`: its final event, its retention, its
    /// key, then its status, in that order (see each step). Returns the
    /// cells the registry forgot.
    pub(crate) fn settled(&self, cell: &TaskCell, status: TaskStatus) -> Forgotten {
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

    /// The cell of a task still unfinished or retained.
    pub(crate) fn find(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        self.registry.get(id)
    }

    /// Calls `f` on every unfinished task.
    pub(crate) fn for_each_unfinished(&self, f: impl FnMut(&TaskCell)) {
        self.registry.for_each_unfinished(f);
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

    /// Ends every open subscription.
    pub(crate) fn close_events(&self) {
        self.events.close();
    }
}
