//! What the queue's handles, workers, jobs and task handles share, and the
//! one place where a task's outcome is accounted for.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use futures_util::future::{Either, select};
use tokio::sync::Notify;

use crate::api::stats::{Counters, Waiting};
use crate::backend::{Backend, Memory, TaskRef};
use crate::engine::backlog::Backlog;
use crate::engine::cell::{BACKOFF, QUEUED, RUNNING, SCHEDULED, TaskCell};
use crate::engine::metrics::Metrics;
use crate::engine::work::Work;
use crate::events::{EventKind, Events};
use crate::{OnFull, ReleaseReport, RetryPolicy, Spawner, Stats, TaskError, TaskStatus};

/// Settings fixed when the queue is built.
pub(crate) struct Config {
    pub(crate) on_full: OnFull,
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Shared<B: Backend = Memory> {
    pub(crate) config: Config,
    /// The line of waiting jobs, their places, and the workers' pool.
    pub(crate) backlog: Backlog,
    /// Once `releasing`, whoever settles the last task (`counters.settled`
    /// reaching `counters.accepted`) notifies `drained`; so does a worker
    /// dropped by its executor.
    pub(crate) counters: Counters,
    pub(crate) releasing: AtomicBool,
    /// Set once a release has drained everything and reported.
    pub(crate) reported: AtomicBool,
    pub(crate) drained: Notify,
    /// Notified whenever a worker stops or is dropped.
    pub(crate) workers_changed: Notify,
    /// Set when the executor dropped a worker (shut down, or refused to
    /// start one): nothing may ever run the jobs left in line.
    pub(crate) executor_lost: AtomicBool,
    /// Set when a release deadline passes; jobs check it before each
    /// attempt, and every unfinished task's cancel signal fires with it.
    pub(crate) deadline: AtomicBool,
    /// Where the queue keeps its tasks.
    pub(crate) backend: B,
    /// Every task's events, published here as the ledger accounts for them.
    pub(crate) events: Events,
    pub(crate) metrics: Metrics,
    pub(crate) spawner: Arc<dyn Spawner>,
}

impl<B: Backend> Drop for Shared<B> {
    /// Reached with jobs still queued only when the executor dropped the
    /// workers and nobody released the queue.
    fn drop(&mut self) {
        self.cancel_backlog();
        // Open subscriptions hold the event hub, not the queue: end them.
        self.events.close();
    }
}

/// A task's final outcome, as accounted.
pub(crate) enum Outcome {
    Succeeded,
    Failed(TaskError),
    TimedOut(Duration),
    Cancelled,
}

impl<B: Backend> Shared<B> {
    /// Accounts for a task that `cell.settle()` (or `settle_if_waiting`)
    /// handed over, having left `phase` after `attempts` attempts.
    pub(crate) fn record(&self, cell: &Arc<TaskCell>, phase: u8, attempts: u32, outcome: Outcome) {
        let counters = &self.counters;
        if phase == RUNNING {
            counters.running.fetch_sub(1, Relaxed);
        }
        let status = match outcome {
            Outcome::Succeeded => {
                counters.completed.fetch_add(1, Relaxed);
                tracing::debug!(attempts, "task succeeded");
                TaskStatus::Succeeded { attempts }
            }
            Outcome::Failed(error) => {
                counters.failed.fetch_add(1, Relaxed);
                if error.is_panic() {
                    counters.panicked.fetch_add(1, Relaxed);
                    tracing::error!(attempts, %error, "task panicked");
                } else {
                    tracing::warn!(attempts, %error, "task failed");
                }
                TaskStatus::Failed { attempts, error }
            }
            Outcome::TimedOut(limit) => {
                counters.failed.fetch_add(1, Relaxed);
                counters.timed_out.fetch_add(1, Relaxed);
                tracing::warn!(attempts, ?limit, "task timed out");
                TaskStatus::TimedOut { attempts, limit }
            }
            Outcome::Cancelled => {
                counters.cancelled.fetch_add(1, Relaxed);
                let was = match phase {
                    QUEUED => "queued",
                    BACKOFF => "waiting to retry",
                    SCHEDULED => "scheduled",
                    _ => "running",
                };
                // May run outside the task's span, hence the explicit id.
                // Those a release deadline cancels are summed up in one
                // line instead (`release_timeout`).
                if self.deadline.load(Relaxed) {
                    tracing::debug!(task_id = cell.id.get(), was, "task cancelled");
                } else {
                    tracing::warn!(task_id = cell.id.get(), was, "task cancelled");
                }
                TaskStatus::Cancelled
            }
        };
        self.metrics
            .settled(&status, counters.running.load(Relaxed));
        // Published before the status, so that a subscriber who finds the
        // task finished knows its final event was already published.
        self.events.publish_final(cell, &status);
        self.backend.settled(TaskRef::new(cell), &status);
        cell.finish(status);
        self.settle_one();
    }

    /// Attempt `attempt` of a task running `work` started. The job's name
    /// is read from the work only if someone listens: a closure task's
    /// start costs nothing more for it.
    #[inline]
    pub(crate) fn started(&self, cell: &Arc<TaskCell>, attempt: u32, work: &Work) {
        self.events.publish(cell.id, || EventKind::Started {
            attempt,
            job: work.kind(),
        });
        self.backend.started(TaskRef::new(cell), attempt);
    }

    /// Accounts for a task that left this process after its attempt `phase`
    /// (running), its retry stored by the backend.
    pub(crate) fn record_handed_back(&self, phase: u8) {
        let counters = &self.counters;
        if phase == RUNNING {
            counters.running.fetch_sub(1, Relaxed);
            counters.retried.fetch_add(1, Relaxed);
        }
        counters.handed_back.fetch_add(1, Relaxed);
        self.metrics.retried(counters.running.load(Relaxed));
        self.settle_one();
    }

    /// Cancels a task of this engine: one waiting (queued, scheduled or
    /// waiting to retry) is settled at once and frees its place; a running
    /// one is dropped at its next `.await` and settled by its worker.
    /// `false` if it had settled already.
    pub(crate) fn cancel(&self, cell: &Arc<TaskCell>) -> bool {
        if cell.is_settled() {
            return false;
        }
        cell.cancel.fire();
        let (settled, removed) = self.backlog.settle_waiting(cell);
        if let Some(phase) = settled {
            let attempts = cell.attempts();
            self.record(cell, phase, attempts, Outcome::Cancelled);
        }
        // Jobs a compaction took out of line, all settled: dropped here,
        // outside the line's lock.
        drop(removed);
        true
    }

    /// Accounts for a task that left its attempt to wait for a retry.
    pub(crate) fn record_retry(&self) {
        let running = self.counters.running.fetch_sub(1, Relaxed) - 1;
        self.counters.retried.fetch_add(1, Relaxed);
        self.metrics.retried(running);
    }

    /// One accepted task fewer to wait for.
    pub(crate) fn settle_one(&self) {
        self.counters.settled.fetch_add(1, SeqCst);
        self.notify_if_drained();
    }

    /// Takes back an acceptance counted by a producer whose task the queue
    /// then refused.
    pub(crate) fn unaccept(&self) {
        self.counters.accepted.fetch_sub(1, SeqCst);
        self.notify_if_drained();
    }

    fn notify_if_drained(&self) {
        if self.releasing.load(SeqCst) && self.drained_enough() {
            self.drained.notify_waiters();
        }
    }

    /// Whether a release may stop waiting: every accepted task is settled,
    /// or the executor dropped a worker and no task is left unsettled but
    /// those in line, which nothing may ever run. Tasks running, scheduled
    /// or waiting to retry are still held by a future the executor is
    /// dropping (or running): their guards settle them. Counted as
    /// unsettled until their accounting is complete, not by the gauges
    /// (`running`, `retrying`), which a settling task leaves first.
    fn drained_enough(&self) -> bool {
        self.all_settled()
            || (self.executor_lost.load(SeqCst) && {
                // Settled first, as in `all_settled`.
                let settled = self.counters.settled.load(SeqCst);
                let unsettled = self.counters.accepted.load(SeqCst).saturating_sub(settled);
                unsettled == self.backlog.waiting().queued as u64
            })
    }

    /// Settled first, accepted second: every task counted as settled was
    /// accepted earlier, so equal counts mean nothing accepted is unsettled.
    fn all_settled(&self) -> bool {
        let settled = self.counters.settled.load(SeqCst);
        settled == self.counters.accepted.load(SeqCst)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.backlog.waiting())
    }

    /// Waits until every accepted task is settled, or the executor dropped
    /// a worker and only tasks in line are left (see `drained_enough`).
    async fn drained(&self) {
        loop {
            let mut notified = pin!(self.drained.notified());
            notified.as_mut().enable();
            if self.drained_enough() {
                return;
            }
            notified.await;
        }
    }

    async fn workers_stopped(&self) {
        loop {
            let mut changed = pin!(self.workers_changed.notified());
            changed.as_mut().enable();
            if self.backlog.no_workers() {
                return;
            }
            changed.await;
        }
    }

    /// Drains every accepted task, then stops the workers.
    async fn drain_and_stop(&self) {
        self.drained().await;
        // Nothing is left to run or retry: the workers may go.
        self.backlog.close();
        self.workers_stopped().await;
        // A task accepted in the instant between the count reaching zero and
        // the close, then failing, is settled by its retry timer: wait for it.
        self.drained().await;
        // Non-empty only if the executor dropped the workers.
        self.cancel_backlog();
    }

    /// Closes the line and settles as cancelled every job still in it: no
    /// worker is to run them.
    fn cancel_backlog(&self) {
        for (job, phase) in self.backlog.close_and_drain() {
            if let Some(phase) = phase {
                let attempts = job.cell.attempts();
                self.record(&job.cell, phase, attempts, Outcome::Cancelled);
            }
        }
    }

    pub(crate) fn close_intake(&self) {
        let first = !self.releasing.swap(true, SeqCst);
        self.backlog.places.close();
        // Told once: a release may be called again, or concurrently, and
        // dropping the last handle releases too.
        if first {
            self.backend.closing();
        }
    }

    pub(crate) fn is_released(&self) -> bool {
        self.backlog.places.is_closed()
    }

    pub(crate) async fn release(&self) -> ReleaseReport {
        self.close_intake();
        self.drain_and_stop().await;
        self.backend.drained().await;
        self.report()
    }

    pub(crate) async fn release_timeout(&self, timeout: Duration) -> ReleaseReport {
        self.close_intake();
        let drained = pin!(self.drain_and_stop());
        if let Either::Right(((), drained)) = select(drained, self.spawner.sleep(timeout)).await {
            let before = self.counters.snapshot(Waiting::default());
            // Set first: a task the sweep below misses, because it is
            // accepted or started just after, sees the flag instead.
            self.deadline.store(true, SeqCst);
            // The backend first: a durable one hands back, rather than
            // cancels, the jobs settled from now on, those in line included.
            self.backend.cancel_unfinished();
            self.cancel_backlog();
            drained.await;
            // One line for them all, not one per task (thousands, with a
            // full queue).
            let after = self.counters.snapshot(Waiting::default());
            tracing::warn!(
                ?timeout,
                cancelled = after.cancelled - before.cancelled,
                handed_back = after.handed_back - before.handed_back,
                "release deadline passed: unfinished tasks stopped"
            );
        }
        // Bounded too: a durable backend whose database went away cannot
        // write the outcomes; its leases expire, and the jobs run again.
        let written = pin!(self.backend.drained());
        let _ = select(written, self.spawner.sleep(timeout)).await;
        self.report()
    }

    fn report(&self) -> ReleaseReport {
        // Everything is settled: subscribers have had every event.
        self.events.close();
        self.reported.store(true, SeqCst);
        let report = ReleaseReport::from(self.counters.snapshot(Waiting::default()));
        tracing::debug!(%report, "queue released");
        report
    }
}

/// Where a task's progress reports go: its queue's engine, whichever its
/// backend, so that a [`TaskContext`](crate::TaskContext) names no backend.
pub(crate) trait ReportProgress: Send + Sync {
    fn progress(&self, cell: &Arc<TaskCell>, fraction: Option<f32>, message: Option<String>);
}

impl<B: Backend> ReportProgress for Shared<B> {
    fn progress(&self, cell: &Arc<TaskCell>, fraction: Option<f32>, message: Option<String>) {
        self.backend
            .progress(TaskRef::new(cell), fraction, message.as_deref());
        self.events
            .publish_progress(cell, || EventKind::Progress { fraction, message });
    }
}
