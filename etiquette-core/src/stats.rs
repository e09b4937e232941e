//! Counters kept while the queue runs, and the snapshots users read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters, shared by handles and workers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) running: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) cancelled: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, queued: usize) -> Stats {
        Stats {
            queued,
            running: self.running.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            completed: self.completed.load(Relaxed),
            failed: self.failed.load(Relaxed),
            panicked: self.panicked.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
        }
    }
}

/// A snapshot of a queue's gauges and counters.
///
/// Each field is read atomically, the snapshot as a whole is not: under load
/// the fields may be a few tasks apart. Once the queue is released and
/// drained they are exact, and every accepted task is accounted for:
/// `accepted == completed + failed + cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Accepted tasks waiting for a slot.
    pub queued: usize,
    /// Tasks running now; never more than `max_concurrent_tasks`.
    pub running: u64,
    /// Tasks accepted since the queue was built.
    pub accepted: u64,
    /// Tasks that ran to completion and succeeded.
    pub completed: u64,
    /// Tasks that returned an error or panicked.
    pub failed: u64,
    /// Of the failed tasks, those that panicked.
    pub panicked: u64,
    /// Accepted tasks that were stopped or dropped before finishing: by a
    /// release deadline, or because their executor shut down.
    pub cancelled: u64,
}

impl Stats {
    /// Tasks that reached an outcome: completed, failed or cancelled.
    pub const fn settled(&self) -> u64 {
        self.completed + self.failed + self.cancelled
    }
}

/// What happened to every task a queue accepted, returned once it is
/// released and drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// Tasks accepted over the queue's life.
    pub accepted: u64,
    /// Tasks that succeeded.
    pub completed: u64,
    /// Tasks that returned an error or panicked.
    pub failed: u64,
    /// Of the failed tasks, those that panicked.
    pub panicked: u64,
    /// Tasks cut short by the release deadline (running or still queued), or
    /// dropped by an executor that shut down.
    pub cancelled: u64,
}

impl From<Stats> for ReleaseReport {
    fn from(stats: Stats) -> Self {
        Self {
            accepted: stats.accepted,
            completed: stats.completed,
            failed: stats.failed,
            panicked: stats.panicked,
            cancelled: stats.cancelled,
        }
    }
}

impl std::fmt::Display for ReleaseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted={} completed={} failed={} panicked={} cancelled={}",
            self.accepted, self.completed, self.failed, self.panicked, self.cancelled
        )
    }
}
