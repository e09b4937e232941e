//! Counters kept while the queue runs, and the snapshots users read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// Live counters, shared by handles and workers. `accepted` is written by
/// producers, the rest by workers: a cache line apart, so that neither side
/// stalls on the other's writes. The workers' counters share one line, so
/// that settling a task moves one line between workers, not one per counter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: CachePadded<AtomicU64>,
    pub(crate) running: AtomicU64,
    /// Accepted tasks settled so far, whatever their outcome.
    pub(crate) settled: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) handed_back: AtomicU64,
    /// Adds waiting for a queue place (written only when the queue is full).
    pub(crate) adds_waiting: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self, waiting: Waiting) -> Stats {
        Stats {
            queued: waiting.queued,
            scheduled: waiting.scheduled,
            retrying: waiting.retrying,
            running: self.running.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            completed: self.completed.load(Relaxed),
            failed: self.failed.load(Relaxed),
            panicked: self.panicked.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
            retried: self.retried.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            handed_back: self.handed_back.load(Relaxed),
            adds_waiting: self.adds_waiting.load(Relaxed),
        }
    }
}

/// Tasks waiting, by where they wait: the gauges the line keeps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Waiting {
    pub(crate) queued: usize,
    pub(crate) scheduled: usize,
    pub(crate) retrying: usize,
}

/// A snapshot of a queue's gauges and counters.
///
/// Each field is read atomically, the snapshot as a whole is not: under load
/// the fields may be a few tasks apart. Once the queue is released and
/// drained they are exact, and every accepted task is accounted for:
/// `accepted == completed + failed + cancelled + handed_back`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Accepted tasks waiting for a slot, retries coming back included.
    pub queued: usize,
    /// Tasks added with a delay, waiting for their time (holding a place
    /// in the queue, not a slot).
    pub scheduled: usize,
    /// Tasks waiting out the backoff before a retry (holding no slot).
    ///
    /// `queued + scheduled + retrying` never exceeds `queue_capacity +
    /// max_concurrent_tasks`, and new tasks are accepted only while it is
    /// below `queue_capacity`: a task coming back from a failed attempt
    /// takes a place even when none is free, and intake waits until the
    /// line is under capacity again.
    pub retrying: usize,
    /// Tasks running now; never more than `max_concurrent_tasks`.
    pub running: u64,
    /// Tasks accepted since the queue was built.
    pub accepted: u64,
    /// Tasks that ran to completion and succeeded.
    pub completed: u64,
    /// Tasks that failed for good: an error not retried further, a panic,
    /// or a time-out.
    pub failed: u64,
    /// Of the failed tasks, those that panicked.
    pub panicked: u64,
    /// Of the failed tasks, those whose last attempt timed out.
    pub timed_out: u64,
    /// Retries scheduled (attempts after a task's first).
    pub retried: u64,
    /// Accepted tasks that were stopped before finishing: through their
    /// handle, by a release deadline, or because their executor shut down.
    pub cancelled: u64,
    /// Tasks that left this process before their outcome, given back to a
    /// durable backend's store: a retry stored to run when due, here or in
    /// another process. Always 0 on the in-memory queue.
    pub handed_back: u64,
    /// Adds waiting for a place in the full queue (with the default
    /// `wait` when full): the back-pressure handlers feel now. They are
    /// refused (`Released`) if the queue is released meanwhile.
    pub adds_waiting: u64,
}

impl Stats {
    /// Tasks this process is done with: completed, failed, cancelled or
    /// handed back.
    pub const fn settled(&self) -> u64 {
        self.completed + self.failed + self.cancelled + self.handed_back
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
    /// Tasks that failed for good: an error, a panic or a time-out.
    pub failed: u64,
    /// Of the failed tasks, those that panicked.
    pub panicked: u64,
    /// Of the failed tasks, those whose last attempt timed out.
    pub timed_out: u64,
    /// Retries scheduled over the queue's life.
    pub retried: u64,
    /// Tasks cancelled: through their handle, by the release deadline
    /// (running, queued, scheduled or waiting to retry), or dropped by an
    /// executor that shut down.
    pub cancelled: u64,
    /// Tasks given back to a durable backend's store before their outcome
    /// (see [`Stats::handed_back`]); always 0 on the in-memory queue.
    pub handed_back: u64,
}

/// The jobs a durable backend stores for a queue, by state, across every
/// process that works it ([`Decorum::stored_jobs`](crate::Decorum::stored_jobs)):
/// what [`Stats`], this process's counters, cannot see (a web server that
/// only adds jobs runs none of them). Each count stops at
/// [`cap`](Self::cap): counting a backlog of millions every few seconds
/// would cost the database more than a glance at it is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StoredJobs {
    /// Waiting, and due.
    pub queued: u64,
    /// Waiting for their start time.
    pub scheduled: u64,
    /// Running, in whichever process.
    pub running: u64,
    /// Waiting for their next attempt.
    pub retrying: u64,
    /// What each count is counted to at most: a count equal to it means
    /// at least that many.
    pub cap: u64,
}

impl StoredJobs {
    /// The counts a backend read (`queued`, `scheduled`, `running`,
    /// `retrying`), each counted to `cap` at most.
    pub const fn new(
        (queued, scheduled, running, retrying): (u64, u64, u64, u64),
        cap: u64,
    ) -> Self {
        Self {
            queued,
            scheduled,
            running,
            retrying,
            cap,
        }
    }
}

impl From<Stats> for ReleaseReport {
    fn from(stats: Stats) -> Self {
        Self {
            accepted: stats.accepted,
            completed: stats.completed,
            failed: stats.failed,
            panicked: stats.panicked,
            timed_out: stats.timed_out,
            retried: stats.retried,
            cancelled: stats.cancelled,
            handed_back: stats.handed_back,
        }
    }
}

impl std::fmt::Display for ReleaseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted={} completed={} failed={} panicked={} timed_out={} retried={} cancelled={}",
            self.accepted,
            self.completed,
            self.failed,
            self.panicked,
            self.timed_out,
            self.retried,
            self.cancelled
        )?;
        // Only a durable backend hands tasks back.
        if self.handed_back > 0 {
            write!(f, " handed_back={}", self.handed_back)?;
        }
        Ok(())
    }
}
