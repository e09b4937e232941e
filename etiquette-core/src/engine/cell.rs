//! The state one task shares between the queue and its handles: a small
//! state machine deciding who settles the task, exactly once, and the status
//! read from it.

use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::AcqRel, Ordering::Acquire,
    Ordering::Release, Ordering::SeqCst, fence,
};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use event_listener::Event;

use crate::engine::signal::Signal;
use crate::memory::retry::Kept;
use crate::{TaskError, TaskId, TaskStatus};

/// The phases a task moves through. Only the owner of the job moves it
/// forward (`[SCHEDULED →] QUEUED → RUNNING → BACKOFF → QUEUED …`); anyone
/// may settle it, and the first to swap in `SETTLED` does the accounting.
pub(crate) const QUEUED: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const BACKOFF: u8 = 2;
pub(crate) const SETTLED: u8 = 3;
/// Added with a delay: waits for its time before it joins the line.
pub(crate) const SCHEDULED: u8 = 4;

/// Why a task that is neither queued nor running waits, for its status.
pub(crate) enum Waiting {
    /// Its last attempt failed (`error`); the next starts after `backoff`.
    Retry(Duration, TaskError),
    /// It was added to run at this time.
    Scheduled(SystemTime),
}

/// Kept cheap on purpose (no allocation beyond its own `Arc`, no lock on the
/// path of a task that succeeds at once): one exists per task.
pub(crate) struct TaskCell {
    pub(crate) id: TaskId,
    phase: AtomicU8,
    attempts: AtomicU32,
    /// Its rank among the queue's finished tasks, from 1; 0 until it
    /// finishes. Decides how long its status is retained.
    finish_rank: AtomicU64,
    /// Why the task waits, when it waits other than in line; only touched
    /// by tasks that retry or were scheduled.
    waiting: Mutex<Option<Waiting>>,
    /// The id of the task's final event, or of the last event published
    /// before it settled if its final event was published to nobody; set
    /// before `outcome`.
    final_event: AtomicU64,
    outcome: OnceLock<TaskStatus>,
    /// Notified once `outcome` is set.
    finished: Event,
    /// Fired by [`TaskHandle::cancel`](crate::TaskHandle::cancel).
    pub(crate) cancel: Signal,
    /// Set when the task left this process for its backend's store (see
    /// [`Backoff::Stored`](crate::backend::Backoff::Stored)).
    pub(crate) handed_back: AtomicBool,
    /// A typed job of the in-memory queue, from its acceptance: what a
    /// retry by hand needs ([`Lives`]). Behind one pointer, given when the
    /// cell is made, so that every other task (closures, jobs of other
    /// backends) pays one word for it, no lock, and no step but a look at
    /// it when the cell is dropped: an `Arc`, never shared, rather than a
    /// `Box`, because its drop is a call, where a `Box`'s would be inlined
    /// into the cell's and cost every cell a register.
    lives: Option<Arc<Lives>>,
}

/// What the in-memory queue keeps of a typed job, to retry it by hand.
pub(crate) struct Lives {
    /// What makes it again: kept from its acceptance until it succeeds, or,
    /// if it fails or is cancelled, for as long as the cell lives. The lock
    /// also orders retries by hand of this life: one wins.
    kept: Mutex<Option<Box<Kept>>>,
    /// The task's next life, once it was retried by hand after this one
    /// ended: handles on this life follow it.
    next: OnceLock<Arc<TaskCell>>,
}

impl Lives {
    /// What is kept of a typed job as it is accepted (made before, outside
    /// the line's lock).
    pub(crate) fn new(kept: Box<Kept>) -> Arc<Self> {
        Arc::new(Self {
            kept: Mutex::new(Some(kept)),
            next: OnceLock::new(),
        })
    }

    /// What is kept to make the job again; locked, so that of two retries
    /// by hand one wins.
    pub(crate) fn kept(&self) -> MutexGuard<'_, Option<Box<Kept>>> {
        // Every update under this lock is a single store or take.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the task's next life; call with `kept` locked.
    pub(crate) fn set_next(&self, next: Arc<TaskCell>) {
        let _ = self.next.set(next);
    }
}

impl TaskCell {
    pub(crate) const fn new(id: TaskId) -> Self {
        Self::in_phase(id, QUEUED)
    }

    /// A job a backend offered, which made `attempts` attempts elsewhere
    /// already: its next attempt is numbered from there.
    pub(crate) const fn offered(id: TaskId, attempts: u32) -> Self {
        let mut cell = Self::in_phase(id, QUEUED);
        cell.attempts = AtomicU32::new(attempts);
        cell
    }

    /// A task added to run at `at`, which waits before joining the line.
    pub(crate) fn scheduled(id: TaskId, at: SystemTime) -> Self {
        let cell = Self::in_phase(id, SCHEDULED);
        drop(cell.set_waiting(Waiting::Scheduled(at)));
        cell
    }

    const fn in_phase(id: TaskId, phase: u8) -> Self {
        Self {
            id,
            phase: AtomicU8::new(phase),
            attempts: AtomicU32::new(0),
            finish_rank: AtomicU64::new(0),
            waiting: Mutex::new(None),
            final_event: AtomicU64::new(0),
            outcome: OnceLock::new(),
            finished: Event::new(),
            cancel: Signal::new(),
            handed_back: AtomicBool::new(false),
            lives: None,
        }
    }

    /// The cell of a typed job of the in-memory queue, keeping what makes it
    /// again (see [`Lives`]); `None` keeps nothing.
    #[inline]
    #[must_use]
    pub(crate) fn keeping(mut self, lives: Option<Arc<Lives>>) -> Self {
        self.lives = lives;
        self
    }

    /// What is kept of this typed job for a retry by hand; `None` for any
    /// other task.
    pub(crate) fn lives(&self) -> Option<&Lives> {
        self.lives.as_deref()
    }

    /// The job succeeded: what was kept to make it again is of no more
    /// use, and is handed over to be dropped.
    pub(crate) fn take_kept(&self) -> Option<Box<Kept>> {
        self.lives()?.kept().take()
    }

    /// The task's next life, if it was retried by hand.
    pub(crate) fn next_life(&self) -> Option<&Arc<Self>> {
        self.lives()?.next.get()
    }

    /// The task's latest life: this one, unless it was retried by hand.
    pub(crate) fn latest(self: &Arc<Self>) -> Arc<Self> {
        let mut cell = self;
        while let Some(next) = cell.next_life() {
            cell = next;
        }
        Arc::clone(cell)
    }

    /// A worker claims a queued task for an attempt, numbered from 1. Fails
    /// if the task was settled (cancelled) while it waited.
    pub(crate) fn begin_attempt(&self) -> Option<u32> {
        self.phase
            .compare_exchange(QUEUED, RUNNING, AcqRel, Acquire)
            .ok()?;
        Some(self.attempts.fetch_add(1, AcqRel).saturating_add(1))
    }

    /// Records why the running attempt failed and how long the task will
    /// wait; call before [`enter_backoff`](Self::enter_backoff), so that a
    /// reader seeing BACKOFF finds it. The previous attempt's error is
    /// dropped (a `TaskError` guards its user error's destructor).
    pub(crate) fn set_retrying(&self, backoff: Duration, error: TaskError) {
        drop(self.set_waiting(Waiting::Retry(backoff, error)));
    }

    fn set_waiting(&self, waiting: Waiting) -> Option<Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(waiting)
    }

    /// The worker running an attempt parks the task for a retry (under the
    /// line's lock, which accounts for its place).
    pub(crate) fn enter_backoff(&self) -> bool {
        self.phase
            .compare_exchange(RUNNING, BACKOFF, AcqRel, Acquire)
            .is_ok()
    }

    /// Whether an attempt is under way; only the job's holder moves a task
    /// out of this phase other than by settling it.
    pub(crate) fn is_running(&self) -> bool {
        self.phase.load(Acquire) == RUNNING
    }

    /// The backoff or schedule timer puts the task in line; returns the
    /// phase it left. Fails if it was settled (cancelled) during the wait.
    pub(crate) fn leave_waiting(&self) -> Option<u8> {
        [BACKOFF, SCHEDULED].into_iter().find(|&phase| {
            self.phase
                .compare_exchange(phase, QUEUED, AcqRel, Acquire)
                .is_ok()
        })
    }

    /// Settles the task unless it already is; returns the phase it left, for
    /// the caller to account for, or `None` when someone else settled it.
    pub(crate) fn settle(&self) -> Option<u8> {
        match self.phase.swap(SETTLED, AcqRel) {
            SETTLED => None,
            phase => Some(phase),
        }
    }

    /// Settles a task that is not running (queued, scheduled or waiting to
    /// retry): a running one is settled by its worker when it sees the
    /// cancellation.
    pub(crate) fn settle_if_waiting(&self) -> Option<u8> {
        [QUEUED, BACKOFF, SCHEDULED].into_iter().find(|&phase| {
            self.phase
                .compare_exchange(phase, SETTLED, AcqRel, Acquire)
                .is_ok()
        })
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.phase.load(Acquire) == SETTLED
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(Acquire)
    }

    pub(crate) fn set_finish_rank(&self, rank: u64) {
        self.finish_rank.store(rank, Release);
    }

    pub(crate) fn finish_rank(&self) -> Option<u64> {
        match self.finish_rank.load(Acquire) {
            0 => None,
            rank => Some(rank),
        }
    }

    /// Records the id of the task's final event (see `final_event`).
    pub(crate) fn set_final_event(&self, id: u64) {
        self.final_event.store(id, Release);
    }

    /// The id of the task's final event; meaningful once it is finished.
    pub(crate) fn final_event(&self) -> u64 {
        self.final_event.load(Acquire)
    }

    /// The final status, once published.
    pub(crate) fn outcome(&self) -> Option<&TaskStatus> {
        self.outcome.get()
    }

    /// Publishes the final status; called once, by whoever settled the task.
    pub(crate) fn finish(&self, status: TaskStatus) {
        let _ = self.outcome.set(status);
        // `notify` would allocate the event's state on first use, for every
        // task, though most are never awaited. The fence pairs with the one
        // `listen` makes: a waiter registered too late to be counted here
        // sees the outcome when it looks again.
        fence(SeqCst);
        if self.finished.total_listeners() > 0 {
            self.finished.notify(usize::MAX);
        }
    }

    /// Resolves once the final status is published.
    pub(crate) async fn finished(&self) -> &TaskStatus {
        loop {
            if let Some(status) = self.outcome.get() {
                return status;
            }
            let listener = self.finished.listen();
            if let Some(status) = self.outcome.get() {
                return status;
            }
            listener.await;
        }
    }

    pub(crate) fn status(&self) -> TaskStatus {
        if let Some(status) = self.outcome.get() {
            return status.clone();
        }
        let attempt = self.attempts();
        match self.phase.load(Acquire) {
            RUNNING => TaskStatus::Running { attempt },
            BACKOFF | SCHEDULED => {
                match &*self.waiting.lock().unwrap_or_else(PoisonError::into_inner) {
                    Some(Waiting::Retry(backoff, error)) => TaskStatus::Retrying {
                        attempt,
                        backoff: *backoff,
                        error: error.clone(),
                    },
                    Some(Waiting::Scheduled(at)) => TaskStatus::Scheduled { run_at: *at },
                    None => TaskStatus::Running { attempt },
                }
            }
            // Queued, or settled an instant ago with the outcome not yet
            // published: report where it was. A task handed back to its
            // backend (which answers for it now) is settled with no
            // outcome here for good: it left to wait for its retry.
            QUEUED => TaskStatus::Queued,
            SETTLED if self.handed_back.load(Acquire) => {
                match &*self.waiting.lock().unwrap_or_else(PoisonError::into_inner) {
                    Some(Waiting::Retry(backoff, error)) => TaskStatus::Retrying {
                        attempt,
                        backoff: *backoff,
                        error: error.clone(),
                    },
                    _ => TaskStatus::Running { attempt },
                }
            }
            _ if attempt == 0 => TaskStatus::Queued,
            _ => TaskStatus::Running { attempt },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::mpsc::RecvTimeoutError;

    /// A waiter racing the finish: whatever the interleaving, it wakes.
    #[test]
    fn a_waiter_racing_the_finish_always_sees_it() {
        // A lost wake-up would leave the waiter blocked for ever: the test
        // waits for its answer, not for the thread, so that it fails instead.
        const BOUND: Duration = Duration::from_secs(5);
        for _ in 0..2_000 {
            let cell = Arc::new(TaskCell::new(TaskId::new(1)));
            let (answer, seen) = std::sync::mpsc::channel();
            {
                let cell = cell.clone();
                std::thread::spawn(move || {
                    let finished = futures_executor::block_on(cell.finished()).is_finished();
                    answer.send(finished).unwrap();
                });
            }
            cell.finish(TaskStatus::Succeeded { attempts: 1 });
            let finished = match seen.recv_timeout(BOUND) {
                Ok(finished) => finished,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out after {BOUND:?} waiting for the waiter to see the finish")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the waiter panicked"),
            };
            assert!(finished);
        }
    }

    /// A cancel racing a worker's claim and a retry: whatever the
    /// interleaving, exactly one party settles the task.
    #[test]
    fn exactly_one_party_settles_under_races() {
        for _ in 0..2_000 {
            let cell = Arc::new(TaskCell::new(TaskId::new(1)));
            let settled = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (cell, settled) = (cell.clone(), settled.clone());
                std::thread::spawn(move || {
                    if cell.begin_attempt().is_none() {
                        return;
                    }
                    cell.set_retrying(Duration::ZERO, TaskError::cancelled());
                    if cell.enter_backoff() && cell.leave_waiting().is_some() {
                        let _ = cell.begin_attempt();
                    }
                    if cell.settle().is_some() {
                        settled.fetch_add(1, SeqCst);
                    }
                })
            };
            let canceller = {
                let (cell, settled) = (cell.clone(), settled.clone());
                std::thread::spawn(move || {
                    if cell.settle_if_waiting().is_some() {
                        settled.fetch_add(1, SeqCst);
                    }
                })
            };
            worker.join().unwrap();
            canceller.join().unwrap();
            // Whoever lost may still try; it must find the task settled.
            assert!(cell.settle().is_none());
            assert_eq!(settled.load(SeqCst), 1);
        }
    }
}
