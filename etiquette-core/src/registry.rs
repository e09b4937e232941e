//! Finds a task's state by id, for as long as the retention allows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use crate::TaskId;
use crate::cell::TaskCell;

/// Every unfinished task, plus the `retention` most recently finished ones.
/// Memory stays bounded: unfinished tasks are bounded by the queue's capacity
/// and concurrency, finished ones by the retention.
pub(crate) struct Registry {
    retention: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskId, Arc<TaskCell>>,
    finished: VecDeque<TaskId>,
}

impl Registry {
    pub(crate) fn new(retention: usize) -> Self {
        Self {
            retention,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert or remove.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, cell: Arc<TaskCell>) {
        self.lock().tasks.insert(cell.id, cell);
    }

    pub(crate) fn remove(&self, id: TaskId) {
        self.lock().tasks.remove(&id);
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        self.lock().tasks.get(&id).cloned()
    }

    /// Keeps a finished task findable until `retention` newer ones finish.
    pub(crate) fn finished(&self, id: TaskId) {
        let mut inner = self.lock();
        inner.finished.push_back(id);
        while inner.finished.len() > self.retention {
            if let Some(evicted) = inner.finished.pop_front() {
                inner.tasks.remove(&evicted);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unfinished_tasks_and_the_newest_finished_ones() {
        let registry = Registry::new(2);
        for raw in 1..=5 {
            registry.insert(Arc::new(TaskCell::new(TaskId::new(raw))));
        }
        for raw in [1, 2, 3] {
            registry.finished(TaskId::new(raw));
        }
        assert!(
            registry.get(TaskId::new(1)).is_none(),
            "oldest finished evicted"
        );
        for raw in [2, 3, 4, 5] {
            assert!(registry.get(TaskId::new(raw)).is_some());
        }
        assert_eq!(registry.len(), 4);
    }

    #[test]
    fn zero_retention_forgets_on_finish() {
        let registry = Registry::new(0);
        registry.insert(Arc::new(TaskCell::new(TaskId::new(1))));
        registry.finished(TaskId::new(1));
        assert_eq!(registry.len(), 0);
    }
}
