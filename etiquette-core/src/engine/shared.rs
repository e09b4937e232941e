//! What the queue's handles, workers, jobs and task handles share, and the
//! one place where a task's outcome is accounted for.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use futures_util::future::{Either, select};
use tokio::sync::Notify;

use crate::api::stats::{Counters, Waiting};
use crate::engine::backlog::Backlog;
use crate::engine::cell::{BACKOFF, QUEUED, RUNNING, SCHEDULED, TaskCell};
use crate::engine::metrics::Metrics;
use crate::engine::store::Store;
use crate::memory::Memory;
use crate::{OnFull, ReleaseReport, RetryPolicy, Spawner, Stats, TaskError, TaskStatus};

/// Settings fixed when the queue is built.
pub(crate) struct Config {
    pub(crate) on_full: OnFull,
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Shared<S: Store = Memory> {
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
    /// What the queue knows of each task.
    pub(crate) store: S,
    pub(crate) metrics: Metrics,
    pub(crate) spawner: Arc<dyn Spawner>,
}

impl<S: Store> Drop for Shared<S> {
    /// Reached with jobs still queued only when the executor dropped the
    /// workers and nobody released the queue.
    fn drop(&mut self) {
        self.cancel_backlog();
        // Open subscriptions hold the event hub, not the queue: end them.
        self.store.close_events();
    }
}

/// A task's final outcome, as accounted.
pub(crate) enum Outcome {
    Succeeded,
    Failed(TaskError),
    TimedOut(Duration),
    Cancelled,
}

impl<S: Store> Shared<S> {
    /// Accounts for a task that `cell.settle()` (or `settle_if_waiting`)
    /// handed over, having left `phase` after `attempts` attempts.
    pub(crate) fn record(&self, cell: &TaskCell, phase: u8, attempts: u32, outcome: Outcome) {
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
                tracing::warn!(task_id = cell.id.get(), was, "task cancelled");
                TaskStatus::Cancelled
            }
        };
        self.metrics
            .settled(&status, counters.running.load(Relaxed));
        let forgotten = self.store.settled(cell, status);
        self.settle_one();
        if !forgotten.is_empty() {
            crate::memory::enqueue::forget(forgotten);
        }
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
    /// or the executor dropped a worker and no task is left but those in
    /// line, which nothing may ever run. Tasks running, scheduled or waiting
    /// to retry are still held by a future the executor is dropping (or
    /// running): their guards settle them.
    fn drained_enough(&self) -> bool {
        self.all_settled()
            || (self.executor_lost.load(SeqCst) && self.counters.running.load(SeqCst) == 0 && {
                let waiting = self.backlog.waiting();
                waiting.retrying == 0 && waiting.scheduled == 0
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
        self.releasing.store(true, SeqCst);
        self.backlog.places.close();
    }

    pub(crate) fn is_released(&self) -> bool {
        self.backlog.places.is_closed()
    }

    pub(crate) async fn release(&self) -> ReleaseReport {
        self.close_intake();
        self.drain_and_stop().await;
        self.report()
    }

    pub(crate) async fn release_timeout(&self, timeout: Duration) -> ReleaseReport {
        self.close_intake();
        let drained = pin!(self.drain_and_stop());
        if let Either::Right(((), drained)) = select(drained, self.spawner.sleep(timeout)).await {
            tracing::warn!(
                ?timeout,
                "release deadline passed: cancelling unfinished tasks"
            );
            // Set first: a task the sweep below misses, because it is
            // accepted or started just after, sees the flag instead.
            self.deadline.store(true, SeqCst);
            self.cancel_backlog();
            self.store.cancel_unfinished();
            drained.await;
        }
        self.report()
    }

    fn report(&self) -> ReleaseReport {
        // Everything is settled: subscribers have had every event.
        self.store.close_events();
        self.reported.store(true, SeqCst);
        let report = ReleaseReport::from(self.counters.snapshot(Waiting::default()));
        tracing::debug!(%report, "queue released");
        report
    }
}
