//! Unique keys: a task added with the key of a task not yet finished is not
//! added; the adder gets the live task's handle instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::TaskId;
use crate::engine::cell::TaskCell;

#[derive(Default)]
pub(crate) struct UniqueKeys {
    /// Keys held or being taken, so that settling a task looks no further
    /// while nobody uses keys.
    live: AtomicUsize,
    keys: Mutex<Keys>,
}

#[derive(Default)]
pub(crate) struct Keys {
    tasks: HashMap<Box<str>, Arc<TaskCell>>,
    /// The way back, for the task settling.
    by_task: HashMap<TaskId, Box<str>>,
}

impl UniqueKeys {
    /// Held while a task with a key is checked and accepted, so that two
    /// adders of one key cannot both add.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Keys> {
        // Every update leaves both maps consistent before any user code runs.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Announces a key about to be taken, before its task can settle: a
    /// task settling sees it counted and looks for its key.
    pub(crate) fn reserve(&self) -> Reservation<'_> {
        self.live.fetch_add(1, Relaxed);
        Reservation(Some(self))
    }

    /// Lets go of the key of a task that settled, if it had one.
    pub(crate) fn release(&self, task: TaskId) {
        if self.live.load(Relaxed) == 0 {
            return;
        }
        let mut keys = self.lock();
        if let Some(key) = keys.by_task.remove(&task) {
            keys.tasks.remove(&key);
            self.live.fetch_sub(1, Relaxed);
        }
    }
}

impl Keys {
    /// The live task holding `key`.
    pub(crate) fn holder(&self, key: &str) -> Option<Arc<TaskCell>> {
        self.tasks.get(key).cloned()
    }
}

/// A key counted in `live` but not yet held: undone on drop, unless the
/// task was accepted and took the key.
pub(crate) struct Reservation<'a>(Option<&'a UniqueKeys>);

impl Reservation<'_> {
    /// The task holding the reservation was accepted: it holds `key` until
    /// it settles.
    pub(crate) fn hold(mut self, keys: &mut Keys, key: Box<str>, cell: &Arc<TaskCell>) {
        self.0 = None;
        keys.by_task.insert(cell.id, key.clone());
        keys.tasks.insert(key, Arc::clone(cell));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(unique) = self.0 {
            unique.live.fetch_sub(1, Relaxed);
        }
    }
}
