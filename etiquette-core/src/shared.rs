//! What the queue's handles, workers, jobs and task handles share, and the
//! one place where a task's outcome is accounted for.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use crossbeam_utils::CachePadded;
use futures_util::future::{Either, select};
use tokio::sync::{Notify, Semaphore};

use crate::backlog::Backlog;
use crate::cell::{BACKOFF, QUEUED, RUNNING, TaskCell};
use crate::events::{EventKind, Events};
use crate::metrics::{Metrics, Settled};
use crate::registry::Registry;
use crate::stats::Counters;
use crate::{OnFull, ReleaseReport, RetryPolicy, Spawner, Stats, TaskError, TaskStatus};

/// Settings fixed when the queue is built.
pub(crate) struct Config {
    pub(crate) on_full: OnFull,
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) backlog: Backlog,
    /// One permit per place in the queue, taken by an adder and given back
    /// by its job when a worker first picks it up (or when the job is
    /// dropped). Closed on release, which wakes waiting adders.
    pub(crate) places: Semaphore,
    /// One permit per worker, held for the worker's whole life: all of them
    /// free means every worker has stopped.
    pub(crate) slots: Arc<Semaphore>,
    /// Once `releasing`, whoever settles the last task (`counters.settled`
    /// reaching `counters.accepted`) notifies `drained`.
    pub(crate) counters: Counters,
    pub(crate) releasing: AtomicBool,
    pub(crate) drained: Notify,
    pub(crate) registry: Registry,
    /// Set when a release deadline passes; jobs check it before each
    /// attempt, and every unfinished task's cancel signal fires with it.
    pub(crate) deadline: AtomicBool,
    pub(crate) events: Events,
    pub(crate) metrics: Metrics,
    pub(crate) spawner: Arc<dyn Spawner>,
    /// Written by producers only; padded away from what workers write.
    pub(crate) next_id: CachePadded<AtomicU64>,
}

impl Drop for Shared {
    /// Reached with jobs still queued only when the executor dropped the
    /// workers and nobody released the queue.
    fn drop(&mut self) {
        self.cancel_backlog();
    }
}

/// A task's final outcome, as accounted.
pub(crate) enum Outcome {
    Succeeded,
    Failed(TaskError),
    TimedOut(Duration),
    Cancelled,
}

impl Shared {
    /// Accounts for a task that `cell.settle()` (or `settle_if_waiting`)
    /// handed over, having left `phase` after `attempts` attempts.
    pub(crate) fn record(&self, cell: &TaskCell, phase: u8, attempts: u32, outcome: Outcome) {
        let counters = &self.counters;
        if phase == RUNNING {
            counters.running.fetch_sub(1, Relaxed);
        }
        let settled = match &outcome {
            Outcome::Succeeded => Settled::Completed,
            Outcome::Failed(_) => Settled::Failed,
            Outcome::TimedOut(_) => Settled::TimedOut,
            Outcome::Cancelled => Settled::Cancelled,
        };
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
                    _ => "running",
                };
                // May run outside the task's span, hence the explicit id.
                tracing::warn!(task_id = cell.id.get(), was, "task cancelled");
                TaskStatus::Cancelled
            }
        };
        // Published before the status, so that a subscriber who finds the
        // task finished knows its final event was already published.
        self.metrics
            .settled(settled, counters.running.load(Relaxed));
        self.events
            .publish(cell.id, || EventKind::from_final(&status));
        // Ranked first: a reader who finds the outcome finds it retained.
        self.registry.finished(cell);
        cell.finish(status);
        self.settle_one();
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
        if self.releasing.load(SeqCst) && self.all_settled() {
            self.drained.notify_waiters();
        }
    }

    /// Settled first, accepted second: every task counted as settled was
    /// accepted earlier, so equal counts mean nothing accepted is unsettled.
    fn all_settled(&self) -> bool {
        let settled = self.counters.settled.load(SeqCst);
        settled == self.counters.accepted.load(SeqCst)
    }

    pub(crate) fn stats(&self) -> Stats {
        self.counters.snapshot(self.backlog.len())
    }

    /// Waits until every accepted task is settled, or no worker is left to
    /// settle anything (the executor shut down).
    async fn drained(&self) {
        loop {
            let mut notified = pin!(self.drained.notified());
            notified.as_mut().enable();
            if self.all_settled() {
                return;
            }
            let stopped = pin!(self.workers_stopped());
            if let Either::Right(_) = select(notified, stopped).await {
                return;
            }
        }
    }

    async fn workers_stopped(&self) {
        // `slots` is never closed, so this only returns once every worker
        // has handed its slot back; the permits are released at once.
        let all = u32::try_from(self.config.max_concurrent_tasks).unwrap_or(u32::MAX);
        drop(self.slots.acquire_many(all).await);
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

    /// Settles as cancelled every job still in the backlog: no worker is
    /// left to run them.
    fn cancel_backlog(&self) {
        while let Some(job) = self.backlog.try_pop() {
            job.cancel(self);
        }
    }

    pub(crate) fn close_intake(&self) {
        self.releasing.store(true, SeqCst);
        self.places.close();
    }

    pub(crate) fn is_released(&self) -> bool {
        self.places.is_closed()
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
            self.registry.for_each_unfinished(|cell| cell.cancel.fire());
            drained.await;
        }
        self.report()
    }

    fn report(&self) -> ReleaseReport {
        // Everything is settled: subscribers have had every event.
        self.events.close();
        let report = ReleaseReport::from(self.counters.snapshot(0));
        tracing::debug!(%report, "queue released");
        report
    }
}
