//! Finds a task's state by id, for as long as the retention allows.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use concurrent_queue::ConcurrentQueue;
// Ids are trusted sequential numbers: a fast non-cryptographic hash is
// enough, and SipHash showed in the profile.
use rustc_hash::FxHashMap as HashMap;

use crate::TaskId;
use crate::cell::TaskCell;

/// Ids are handed out in sequence, so `id % SHARDS` spreads neighbouring
/// tasks over different locks: producers and workers rarely meet.
const SHARDS: usize = 16;

/// Every unfinished task, plus the `retention` most recently finished ones.
/// Memory stays bounded: unfinished tasks are bounded by the queue's capacity
/// and concurrency (and by those waiting to retry), finished ones by the
/// retention.
pub(crate) struct Registry {
    retention: usize,
    shards: [Mutex<HashMap<TaskId, Arc<TaskCell>>>; SHARDS],
    /// Finished ids, oldest first.
    finished: ConcurrentQueue<TaskId>,
}

impl Registry {
    pub(crate) fn new(retention: usize) -> Self {
        Self {
            retention,
            shards: Default::default(),
            finished: ConcurrentQueue::unbounded(),
        }
    }

    fn shard(&self, id: TaskId) -> MutexGuard<'_, HashMap<TaskId, Arc<TaskCell>>> {
        let index = usize::try_from(id.get() % SHARDS as u64).unwrap_or_default();
        // A shard stays consistent even if a holder panicked: every update is
        // a single insert or remove.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn insert(&self, cell: Arc<TaskCell>) {
        self.shard(cell.id).insert(cell.id, cell);
    }

    pub(crate) fn remove(&self, id: TaskId) {
        self.shard(id).remove(&id);
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        self.shard(id).get(&id).cloned()
    }

    /// Keeps a finished task findable until `retention` newer ones finish.
    pub(crate) fn finished(&self, id: TaskId) {
        let _ = self.finished.push(id);
        while self.finished.len() > self.retention {
            match self.finished.pop() {
                Ok(evicted) => self.remove(evicted),
                Err(_) => break,
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap().len())
            .sum()
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
