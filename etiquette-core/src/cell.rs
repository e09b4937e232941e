//! The state one task shares between the queue and its handles: a small
//! state machine deciding who settles the task, exactly once.

use std::sync::atomic::{AtomicU8, Ordering::AcqRel, Ordering::Acquire};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{TaskId, TaskStatus};

/// The phases a task moves through. Only the owner of the job moves it
/// forward (`QUEUED → RUNNING → BACKOFF → QUEUED …`); anyone may settle it,
/// and the first to swap in `SETTLED` does the accounting.
pub(crate) const QUEUED: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const BACKOFF: u8 = 2;
pub(crate) const SETTLED: u8 = 3;

pub(crate) struct TaskCell {
    pub(crate) id: TaskId,
    phase: AtomicU8,
    pub(crate) status: watch::Sender<TaskStatus>,
    /// Fired by [`TaskHandle::cancel`](crate::TaskHandle::cancel).
    pub(crate) cancel: CancellationToken,
}

impl TaskCell {
    pub(crate) fn new(id: TaskId) -> Self {
        Self {
            id,
            phase: AtomicU8::new(QUEUED),
            status: watch::Sender::new(TaskStatus::Queued),
            cancel: CancellationToken::new(),
        }
    }

    /// A worker claims a queued task for an attempt. Fails if it was settled
    /// (cancelled) while it waited.
    pub(crate) fn begin_attempt(&self) -> bool {
        self.phase
            .compare_exchange(QUEUED, RUNNING, AcqRel, Acquire)
            .is_ok()
    }

    /// The worker running an attempt parks the task for a retry.
    pub(crate) fn enter_backoff(&self) -> bool {
        self.phase
            .compare_exchange(RUNNING, BACKOFF, AcqRel, Acquire)
            .is_ok()
    }

    /// The backoff timer puts the task back in line. Fails if it was settled
    /// (cancelled) during the wait.
    pub(crate) fn leave_backoff(&self) -> bool {
        self.phase
            .compare_exchange(BACKOFF, QUEUED, AcqRel, Acquire)
            .is_ok()
    }

    /// Settles the task unless it already is; returns the phase it left, for
    /// the caller to account for, or `None` when someone else settled it.
    pub(crate) fn settle(&self) -> Option<u8> {
        match self.phase.swap(SETTLED, AcqRel) {
            SETTLED => None,
            phase => Some(phase),
        }
    }

    /// Settles a task that is not running (queued or waiting to retry): a
    /// running one is settled by its worker when it sees the cancellation.
    pub(crate) fn settle_if_waiting(&self) -> Option<u8> {
        [QUEUED, BACKOFF].into_iter().find(|&phase| {
            self.phase
                .compare_exchange(phase, SETTLED, AcqRel, Acquire)
                .is_ok()
        })
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.phase.load(Acquire) == SETTLED
    }

    /// Marks a task the queue refused: it was never accepted, so nobody
    /// accounts for it.
    pub(crate) fn refuse(&self) {
        self.phase.swap(SETTLED, AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

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
                    if !cell.begin_attempt() {
                        return;
                    }
                    if cell.enter_backoff() && cell.leave_backoff() && cell.begin_attempt() {
                        // second attempt finishes
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
