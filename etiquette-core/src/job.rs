//! One accepted task on its way through the queue: its attempts, its
//! retries, and the guarantee that it is accounted for on every path.

use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::{Either, select};
use tracing::{Instrument as _, Span};

use crate::cell::TaskCell;
use crate::events::EventKind;
use crate::metrics::Stamp;
use crate::shared::{Outcome, Shared};
use crate::spawner::BoxFuture;
use crate::task::{BoxError, TaskOutput};
use crate::{RetryPolicy, TaskContext, TaskError};

type Attempt = BoxFuture<Result<(), BoxError>>;

/// What runs: a future (one attempt only) or a factory making one future per
/// attempt.
pub(crate) enum Work {
    Once(Option<Attempt>),
    // Boxed whole to keep `Job`, moved through the channel, small.
    Retryable(Box<(MakeAttempt, RetryPolicy)>),
}

/// Makes one attempt's future; boxed once, when the task is added.
pub(crate) type MakeAttempt = Box<dyn FnMut(TaskContext) -> Attempt + Send>;

impl Work {
    pub(crate) fn once<F>(task: F) -> Self
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        // `map` polls the task where it lies; an `async move` wrapper would
        // first move it into its own state, a copy of the whole future.
        Self::Once(Some(Box::pin(task.map(TaskOutput::into_result))))
    }

    pub(crate) fn make_attempt<M, F>(mut make: M) -> MakeAttempt
    where
        M: FnMut(TaskContext) -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        Box::new(move |context| -> Attempt { Box::pin(make(context).map(TaskOutput::into_result)) })
    }

    pub(crate) fn retryable(make: MakeAttempt, policy: RetryPolicy) -> Self {
        Self::Retryable(Box::new((make, policy)))
    }

    fn next_attempt(&mut self, context: impl FnOnce() -> TaskContext) -> Option<Attempt> {
        match self {
            Self::Once(task) => task.take(),
            Self::Retryable(retryable) => Some((retryable.0)(context())),
        }
    }

    fn policy(&self) -> Option<&RetryPolicy> {
        match self {
            Self::Once(_) => None,
            Self::Retryable(retryable) => Some(&retryable.1),
        }
    }
}

/// How one attempt ended.
enum AttemptEnd {
    Finished(Result<(), BoxError>),
    Panicked(String),
    TimedOut(Duration),
    Cancelled,
}

/// A task between acceptance and its outcome. Dropped before it is settled
/// (by a release deadline, or with an executor that shut down), it reports
/// itself cancelled.
pub(crate) struct Job {
    pub(crate) cell: Arc<TaskCell>,
    shared: Arc<Shared>,
    work: Work,
    timeout: Option<Duration>,
    span: Span,
    /// When the task was accepted, until its first start.
    accepted_at: Option<Stamp>,
    /// Whether it holds one place in the queue's capacity, as it does until
    /// a worker first picks it up.
    holds_place: bool,
}

impl Job {
    pub(crate) fn new(
        cell: Arc<TaskCell>,
        shared: Arc<Shared>,
        work: Work,
        timeout: Option<Duration>,
    ) -> Self {
        Self {
            // Made here, not in the worker, so that its parent is the span
            // current where the task was added: the request's.
            span: tracing::info_span!(
                "task",
                task_id = cell.id.get(),
                attempt = tracing::field::Empty
            ),
            cell,
            shared,
            work,
            timeout,
            accepted_at: Some(Stamp::now()),
            holds_place: true,
        }
    }

    /// Gives the job's place in the queue back, once.
    fn leave_queue(&mut self) {
        if std::mem::take(&mut self.holds_place) {
            self.shared.places.add_permits(1);
        }
    }

    /// Called when the queue refused the job: it was never accepted.
    pub(crate) fn refuse(self) {
        self.cell.refuse();
    }

    /// Runs one attempt, then settles the task or schedules its retry.
    pub(crate) async fn run(mut self) {
        if self.shared.deadline.load(SeqCst) {
            return; // dropping settles it as cancelled
        }
        let Some(attempt) = self.cell.begin_attempt() else {
            return; // cancelled while queued: already settled
        };
        self.leave_queue();
        let running = self.shared.counters.running.fetch_add(1, Relaxed) + 1;
        let backlog = &self.shared.backlog;
        self.shared
            .metrics
            .started(self.accepted_at.take(), || backlog.len(), running);
        self.shared
            .events
            .publish(self.cell.id, || EventKind::Started { attempt });
        self.span.record("attempt", attempt);
        let span = self.span.clone();
        let started_at = Stamp::now();
        let end = self.attempt(attempt).instrument(span.clone()).await;
        self.shared.metrics.attempt_ended(started_at);
        let _entered = span.enter();
        match end {
            AttemptEnd::Finished(Ok(())) => self.settle(Outcome::Succeeded),
            AttemptEnd::Finished(Err(error)) => {
                let retry = self
                    .work
                    .policy()
                    .is_some_and(|policy| policy.retries_error(attempt, error.as_ref()));
                let error = TaskError::failed(error);
                if retry {
                    self.retry_later(attempt, error);
                } else {
                    self.settle(Outcome::Failed(error));
                }
            }
            AttemptEnd::Panicked(message) => {
                self.settle(Outcome::Failed(TaskError::panicked(message)));
            }
            AttemptEnd::TimedOut(limit) => {
                let retry = self
                    .work
                    .policy()
                    .is_some_and(|policy| policy.retries_timeout(attempt));
                if retry {
                    self.retry_later(attempt, TaskError::timed_out(limit));
                } else {
                    self.settle(Outcome::TimedOut(limit));
                }
            }
            AttemptEnd::Cancelled => self.settle(Outcome::Cancelled),
        }
    }

    /// Races the attempt against its time limit and its cancellation (by
    /// its handle or a release deadline). The attempt is polled first, so
    /// one that finishes at once never polls the timer (which is created
    /// up front, so that the limit counts from the attempt's start) or the
    /// cancel signal.
    async fn attempt(&mut self, number: u32) -> AttemptEnd {
        let context = || TaskContext::new(self.cell.id, number, Arc::clone(&self.shared));
        let Some(attempt) = self.work.next_attempt(context) else {
            // A one-shot task is never retried, so this cannot happen; if it
            // did, the task would be reported cancelled rather than lost.
            return AttemptEnd::Cancelled;
        };
        let mut attempt = AssertUnwindSafe(attempt).catch_unwind();
        let mut timer = self
            .timeout
            .map(|limit| (limit, self.shared.spawner.sleep(limit)));
        // Not polled, so costing nothing, unless the attempt has to wait. A
        // release deadline fires it too.
        let mut cancelled = pin!(self.cell.cancel.fired());
        poll_fn(|cx| {
            if let Poll::Ready(result) = attempt.poll_unpin(cx) {
                return Poll::Ready(match result {
                    Ok(result) => AttemptEnd::Finished(result),
                    Err(payload) => AttemptEnd::Panicked(panic_message(payload.as_ref())),
                });
            }
            if let Some((limit, timer)) = timer.as_mut()
                && timer.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(AttemptEnd::TimedOut(*limit));
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(AttemptEnd::Cancelled);
            }
            Poll::Pending
        })
        .await
    }

    fn settle(&self, outcome: Outcome) {
        if let Some(phase) = self.cell.settle() {
            let attempts = self.cell.attempts();
            self.shared.record(&self.cell, phase, attempts, outcome);
        }
    }

    /// Frees the slot, waits out the backoff on a timer of its own, then
    /// puts the task back in line. Cancellation during the wait settles it.
    fn retry_later(self, attempt: u32, error: TaskError) {
        let Some(delay) = self.work.policy().map(|policy| policy.next_delay(attempt)) else {
            return;
        };
        tracing::warn!(attempt, ?delay, %error, "attempt failed, will retry");
        self.shared
            .events
            .publish(self.cell.id, || EventKind::Retrying {
                attempt,
                backoff: delay,
                error: error.to_string(),
            });
        if !self.cell.enter_backoff(delay, error) {
            return;
        }
        let running = self.shared.counters.running.fetch_sub(1, Relaxed) - 1;
        self.shared.counters.retried.fetch_add(1, Relaxed);
        self.shared.metrics.retried(running);
        let shared = Arc::clone(&self.shared);
        let sleep = shared.spawner.sleep(delay);
        let retry = async move {
            let job = self;
            let waited = {
                let cancelled = pin!(job.cell.cancel.fired());
                matches!(select(sleep, cancelled).await, Either::Left(_))
            };
            if waited && job.cell.leave_backoff() {
                let shared = Arc::clone(&job.shared);
                // Refused only if release stopped the workers meanwhile:
                // dropping the job then settles it as cancelled.
                drop(shared.backlog.push(job));
            }
            // Otherwise dropping `job` settles it as cancelled.
        };
        // If the executor refuses, the dropped future settles the task.
        let _ = shared.spawner.spawn(Box::pin(retry));
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.leave_queue();
        self.settle(Outcome::Cancelled);
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}
