//! Finds a task's state by id, for as long as the retention allows.
//!
//! Every accepted task passes through here, so the common path is one
//! uncontended lock of a slot the producer just wrote its neighbour into:
//! ids are handed out in sequence, and task `id` lives in slot `id % slots`
//! until a task `slots` ids younger takes the slot. Finishing a task writes
//! nothing here but a number in its own cell. Only a task still wanted when
//! its slot is taken (unfinished, or finished among the last `retention`)
//! moves to a side map, which stays small: `slots` is sized so that a full
//! queue rarely needs it.

use std::sync::atomic::{
    AtomicU64, AtomicUsize, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

// Ids are trusted sequential numbers: a fast non-cryptographic hash is
// enough, and SipHash showed in the profile.
use rustc_hash::FxHashMap as HashMap;

use crate::TaskId;
use crate::engine::cell::TaskCell;

/// Bounds on the slot ring: large enough to keep a small queue's tasks out of
/// the side map, small enough that a huge queue capacity does not allocate
/// megabytes up front (its extra tasks use the side map).
const MIN_SLOTS: usize = 64;
const MAX_SLOTS: usize = 1 << 16;

/// Every unfinished task, plus the `retention` most recently finished ones.
/// Memory stays bounded: the ring holds at most `slots` cells, and the side
/// map only unfinished tasks plus the retained finished ones (forgotten
/// ones are swept out as other tasks finish).
pub(crate) struct Registry {
    retention: u64,
    slots: Box<[Mutex<Option<Arc<TaskCell>>>]>,
    /// Tasks finished so far; a task's rank among them decides whether its
    /// status is still retained.
    finished: AtomicU64,
    /// Tasks still wanted whose slot was taken by a younger task.
    displaced: Mutex<HashMap<TaskId, Arc<TaskCell>>>,
    /// Its length, read without the lock to decide on sweeps.
    displaced_len: AtomicUsize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single store, insert or remove, so
    // the state is consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// A registry for a queue that holds up to `live` tasks waiting or
    /// running at once.
    pub(crate) fn new(retention: usize, live: usize) -> Self {
        let slots = live
            .saturating_add(retention)
            .checked_next_power_of_two()
            .unwrap_or(MAX_SLOTS)
            .clamp(MIN_SLOTS, MAX_SLOTS);
        Self::with_slots(retention, slots)
    }

    fn with_slots(retention: usize, slots: usize) -> Self {
        Self {
            retention: u64::try_from(retention).unwrap_or(u64::MAX),
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
            finished: AtomicU64::new(0),
            displaced: Mutex::default(),
            displaced_len: AtomicUsize::new(0),
        }
    }

    fn slot(&self, id: TaskId) -> &Mutex<Option<Arc<TaskCell>>> {
        let index = id.get() % self.slots.len() as u64;
        &self.slots[usize::try_from(index).unwrap_or_default()]
    }

    /// Whether `cell` is still to be found: unfinished, or finished among the
    /// last `retention`.
    fn wanted(&self, cell: &TaskCell) -> bool {
        match cell.finish_rank() {
            None => true,
            Some(rank) => self.finished.load(Acquire).saturating_sub(rank) < self.retention,
        }
    }

    /// Registers a task; returns the task it made the registry forget, for
    /// the caller to drop outside any lock (its outcome may hold a user's
    /// error, whose destructor is user code).
    #[must_use]
    pub(crate) fn insert(&self, cell: Arc<TaskCell>) -> Option<Arc<TaskCell>> {
        let mut slot = lock(self.slot(cell.id));
        let older = slot.replace(cell)?;
        if self.wanted(&older) {
            // Moved while the slot is still locked, so that a lookup finds it
            // in one place or the other.
            self.displace(older);
            return None;
        }
        Some(older)
    }

    /// Puts `cell`, the next life of a task retried by hand, where its
    /// previous life is kept; returns that life, for the caller to drop
    /// outside any lock (see `insert`).
    #[must_use]
    pub(crate) fn replace(&self, cell: Arc<TaskCell>) -> Option<Arc<TaskCell>> {
        let mut slot = lock(self.slot(cell.id));
        if slot.as_ref().is_some_and(|held| held.id == cell.id) {
            return slot.replace(cell);
        }
        // Its slot was taken by a younger task: the old life waits in the
        // side map, and the new one takes its place there, under the slot's
        // lock, so that a lookup finds one or the other.
        let mut displaced = lock(&self.displaced);
        let older = displaced.insert(cell.id, cell);
        self.displaced_len.store(displaced.len(), Relaxed);
        older
    }

    fn displace(&self, cell: Arc<TaskCell>) {
        let mut displaced = lock(&self.displaced);
        displaced.insert(cell.id, cell);
        self.displaced_len.store(displaced.len(), Relaxed);
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        let slot = lock(self.slot(id));
        let cell = match slot.as_ref().filter(|cell| cell.id == id) {
            Some(cell) => Arc::clone(cell),
            None => {
                drop(slot);
                lock(&self.displaced).get(&id).cloned()?
            }
        };
        self.wanted(&cell).then_some(cell)
    }

    /// Calls `f` on every unfinished task: once, when a release deadline
    /// passes, so a scan of every slot is fine.
    pub(crate) fn for_each_unfinished(&self, mut f: impl FnMut(&TaskCell)) {
        let unfinished = |cell: &&Arc<TaskCell>| cell.finish_rank().is_none();
        for slot in &self.slots {
            if let Some(cell) = lock(slot).as_ref().filter(unfinished) {
                f(cell);
            }
        }
        for cell in lock(&self.displaced).values().filter(unfinished) {
            f(cell);
        }
    }

    /// Ranks a task among the finished ones; call before its outcome is
    /// published. From then on it stays findable until `retention` more
    /// tasks finish. Returns the displaced tasks a sweep forgot, for the
    /// caller to drop outside any lock (see `insert`).
    #[must_use]
    pub(crate) fn finished(&self, cell: &TaskCell) -> Vec<Arc<TaskCell>> {
        let rank = self.finished.fetch_add(1, AcqRel) + 1;
        cell.set_finish_rank(rank);
        // Displaced tasks are forgotten as others finish: sweep them once
        // every `len` finishes or so, which costs O(1) per finish.
        let len = self.displaced_len.load(Relaxed);
        if len > 0 {
            let period = len.next_power_of_two().max(MIN_SLOTS) as u64;
            if rank.is_multiple_of(period) {
                let mut displaced = lock(&self.displaced);
                let forgotten: Vec<TaskId> = displaced
                    .values()
                    .filter(|cell| !self.wanted(cell))
                    .map(|cell| cell.id)
                    .collect();
                let forgotten = forgotten
                    .iter()
                    .filter_map(|id| displaced.remove(id))
                    .collect();
                self.displaced_len.store(displaced.len(), Relaxed);
                return forgotten;
            }
        }
        Vec::new()
    }

    #[cfg(test)]
    fn displaced_len(&self) -> usize {
        lock(&self.displaced).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(raw: u64) -> Arc<TaskCell> {
        Arc::new(TaskCell::new(TaskId::new(raw)))
    }

    fn found(registry: &Registry, ids: std::ops::RangeInclusive<u64>) -> Vec<u64> {
        ids.filter(|&raw| registry.get(TaskId::new(raw)).is_some())
            .collect()
    }

    #[test]
    fn keeps_unfinished_tasks_and_the_newest_finished_ones() {
        let registry = Registry::with_slots(2, 64);
        let cells: Vec<_> = (1..=5).map(cell).collect();
        for cell in &cells {
            let _ = registry.insert(Arc::clone(cell));
        }
        for cell in &cells[..3] {
            let _ = registry.finished(cell);
        }
        assert_eq!(found(&registry, 1..=5), [2, 3, 4, 5]);
    }

    #[test]
    fn zero_retention_forgets_on_finish() {
        let registry = Registry::with_slots(0, 64);
        let cell = cell(1);
        let _ = registry.insert(Arc::clone(&cell));
        assert!(registry.get(cell.id).is_some());
        let _ = registry.finished(&cell);
        assert!(registry.get(cell.id).is_none());
    }

    #[test]
    fn a_task_outliving_its_slot_is_still_found_and_retained_after_it_finishes() {
        // Four slots, so task 1's slot is taken by tasks 5, 9, 13...
        let registry = Registry::with_slots(2, 4);
        let long = cell(1);
        let _ = registry.insert(Arc::clone(&long));
        for raw in 2..=100 {
            let short = cell(raw);
            let _ = registry.insert(Arc::clone(&short));
            let _ = registry.finished(&short);
        }
        assert_eq!(found(&registry, 1..=100), [1, 99, 100]);
        let _ = registry.finished(&long);
        assert_eq!(found(&registry, 1..=100), [1, 100], "1 finished last");
        for raw in 101..=102 {
            let short = cell(raw);
            let _ = registry.insert(Arc::clone(&short));
            let _ = registry.finished(&short);
        }
        assert_eq!(found(&registry, 1..=102), [101, 102]);
    }

    #[test]
    fn displaced_tasks_are_swept_once_forgotten() {
        let registry = Registry::with_slots(0, 4);
        let cells: Vec<_> = (1..=1_000).map(cell).collect();
        // All unfinished: every one displaced by its successor is kept.
        for cell in &cells {
            let _ = registry.insert(Arc::clone(cell));
        }
        assert_eq!(found(&registry, 1..=1_000).len(), 1_000);
        for cell in &cells {
            let _ = registry.finished(cell);
        }
        assert!(found(&registry, 1..=1_000).is_empty());
        for raw in 1_001..=2_100 {
            let cell = cell(raw);
            let _ = registry.insert(Arc::clone(&cell));
            let _ = registry.finished(&cell);
        }
        assert_eq!(registry.displaced_len(), 0, "forgotten tasks still held");
    }

    #[test]
    fn visits_every_unfinished_task_in_slots_and_displaced() {
        let registry = Registry::with_slots(8, 4);
        let cells: Vec<_> = (1..=10).map(cell).collect();
        for cell in &cells {
            let _ = registry.insert(Arc::clone(cell));
        }
        for cell in [&cells[0], &cells[4], &cells[9]] {
            let _ = registry.finished(cell);
        }
        let mut visited = Vec::new();
        registry.for_each_unfinished(|cell| visited.push(cell.id.get()));
        visited.sort_unstable();
        assert_eq!(visited, [2, 3, 4, 6, 7, 8, 9]);
    }

    /// Producers and finishers racing over a tiny ring: an unfinished task is
    /// never lost, whatever the interleaving.
    #[test]
    fn unfinished_tasks_are_found_under_races() {
        let registry = Arc::new(Registry::with_slots(0, 8));
        let producers: Vec<_> = (0..2u64)
            .map(|producer| {
                let registry = Arc::clone(&registry);
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for raw in (0..2_000).map(|n| n * 2 + producer + 1) {
                        let cell = cell(raw);
                        let _ = registry.insert(Arc::clone(&cell));
                        held.push(cell);
                        if held.len() > 20 {
                            let done = held.remove(0);
                            let _ = registry.finished(&done);
                        }
                        for cell in &held {
                            assert!(registry.get(cell.id).is_some(), "lost {}", cell.id);
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
    }
}
