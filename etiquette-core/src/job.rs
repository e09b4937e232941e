//! One accepted task on its way through the queue: its attempts, its
//! retries, and the guarantee that it is accounted for on every path.

use std::borrow::Borrow;
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

/// What follows an attempt.
enum AfterAttempt {
    Settle(Outcome),
    Retry(TaskError),
}

/// How one attempt ended.
enum AttemptEnd {
    Finished(Result<(), BoxError>),
    Panicked(String),
    TimedOut(Duration),
    Cancelled,
}

/// A task between acceptance and its outcome.
///
/// It holds no handle on the queue: whoever has the job in hand lends it
/// the queue's state. A reference count per task, taken by the producer and
/// dropped by a worker on another thread, made both write one cache line
/// on every task. A job is therefore settled by whoever drops it: a worker
/// or retry timer through [`InHand`], and the queue itself for jobs left in
/// the backlog ([`cancel`](Self::cancel)).
pub(crate) struct Job {
    pub(crate) cell: Arc<TaskCell>,
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
    pub(crate) fn new(cell: Arc<TaskCell>, work: Work, timeout: Option<Duration>) -> Self {
        Self {
            // Made here, not in the worker, so that its parent is the span
            // current where the task was added: the request's.
            span: tracing::info_span!(
                "task",
                task_id = cell.id.get(),
                attempt = tracing::field::Empty
            ),
            cell,
            work,
            timeout,
            accepted_at: Some(Stamp::now()),
            holds_place: true,
        }
    }

    /// Gives the job's place in the queue back, once.
    fn leave_queue(&mut self, shared: &Shared) {
        if std::mem::take(&mut self.holds_place) {
            shared.places.add_permits(1);
        }
    }

    /// Called when the queue refused the job: it was never accepted.
    pub(crate) fn refuse(mut self, shared: &Shared) {
        self.cell.refuse();
        self.leave_queue(shared);
    }

    /// Settles the task as cancelled, unless it is settled already: the job
    /// will never run again.
    pub(crate) fn cancel(mut self, shared: &Shared) {
        self.leave_queue(shared);
        self.settle(shared, Outcome::Cancelled);
    }

    /// Runs one attempt, then settles the task or schedules its retry.
    pub(crate) fn run(self, shared: &Arc<Shared>) -> impl Future<Output = ()> + '_ {
        // In hand before the future is first polled: dropped even then, it
        // settles the task.
        InHand {
            job: Some(self),
            shared,
        }
        .run()
    }

    /// Races the attempt against its time limit and its cancellation (by
    /// its handle or a release deadline). The attempt is polled first, so
    /// one that finishes at once never polls the timer (which is created
    /// up front, so that the limit counts from the attempt's start) or the
    /// cancel signal.
    async fn attempt(&mut self, shared: &Arc<Shared>, number: u32) -> AttemptEnd {
        let context = || TaskContext::new(self.cell.id, number, Arc::clone(shared));
        let Some(attempt) = self.work.next_attempt(context) else {
            // A one-shot task is never retried, so this cannot happen; if it
            // did, the task would be reported cancelled rather than lost.
            return AttemptEnd::Cancelled;
        };
        let mut attempt = AssertUnwindSafe(attempt).catch_unwind();
        let mut timer = self
            .timeout
            .map(|limit| (limit, shared.spawner.sleep(limit)));
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

    /// Whether the task settles after this attempt, or retries.
    fn after(&self, attempt: u32, end: AttemptEnd) -> AfterAttempt {
        let policy = self.work.policy();
        match end {
            AttemptEnd::Finished(Ok(())) => AfterAttempt::Settle(Outcome::Succeeded),
            AttemptEnd::Finished(Err(error)) => {
                let retry =
                    policy.is_some_and(|policy| policy.retries_error(attempt, error.as_ref()));
                let error = TaskError::failed(error);
                if retry {
                    AfterAttempt::Retry(error)
                } else {
                    AfterAttempt::Settle(Outcome::Failed(error))
                }
            }
            AttemptEnd::Panicked(message) => {
                AfterAttempt::Settle(Outcome::Failed(TaskError::panicked(message)))
            }
            AttemptEnd::TimedOut(limit) => {
                if policy.is_some_and(|policy| policy.retries_timeout(attempt)) {
                    AfterAttempt::Retry(TaskError::timed_out(limit))
                } else {
                    AfterAttempt::Settle(Outcome::TimedOut(limit))
                }
            }
            AttemptEnd::Cancelled => AfterAttempt::Settle(Outcome::Cancelled),
        }
    }

    fn settle(&self, shared: &Shared, outcome: Outcome) {
        if let Some(phase) = self.cell.settle() {
            let attempts = self.cell.attempts();
            shared.record(&self.cell, phase, attempts, outcome);
        }
    }

    /// Frees the slot, waits out the backoff on a timer of its own, then
    /// puts the task back in line. Cancellation during the wait settles it.
    fn retry_later(self, shared: &Arc<Shared>, attempt: u32, error: TaskError) {
        let Some(delay) = self.work.policy().map(|policy| policy.next_delay(attempt)) else {
            self.cancel(shared); // unreachable: only retryable work retries
            return;
        };
        tracing::warn!(attempt, ?delay, %error, "attempt failed, will retry");
        shared.events.publish(self.cell.id, || EventKind::Retrying {
            attempt,
            backoff: delay,
            error: error.to_string(),
        });
        if !self.cell.enter_backoff(delay, error) {
            return; // cancelled meanwhile: already settled
        }
        let running = shared.counters.running.fetch_sub(1, Relaxed) - 1;
        shared.counters.retried.fetch_add(1, Relaxed);
        shared.metrics.retried(running);
        let sleep = shared.spawner.sleep(delay);
        // Made before the timer future, so that a timer the executor drops
        // unpolled still settles the task.
        let mut in_hand = InHand {
            job: Some(self),
            shared: Arc::clone(shared),
        };
        let retry = async move {
            // The cell alone is borrowed across the wait: a job is not `Sync`.
            let back_in_line = match in_hand.job.as_ref().map(|job| &job.cell) {
                Some(cell) => {
                    let cancelled = pin!(cell.cancel.fired());
                    matches!(select(sleep, cancelled).await, Either::Left(_))
                        && cell.leave_backoff()
                }
                None => false,
            };
            if back_in_line
                && let Some(job) = in_hand.job.take()
                // Refused only if release stopped the workers meanwhile.
                && let Err(refused) = in_hand.shared.backlog.push(job)
            {
                refused.cancel(&in_hand.shared);
            }
            // Otherwise dropping `in_hand` settles it as cancelled.
        };
        // If the executor refuses, the dropped future settles the task.
        let _ = shared.spawner.spawn(Box::pin(retry));
    }
}

/// A job in the hands of a worker or a retry timer. Dropped before the job
/// is settled (by a release deadline, or with an executor that shut down),
/// it reports the task cancelled.
struct InHand<S: Borrow<Arc<Shared>>> {
    /// `None` once handed on, to the backlog or a retry timer.
    job: Option<Job>,
    shared: S,
}

impl<S: Borrow<Arc<Shared>>> Drop for InHand<S> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            job.cancel(self.shared.borrow());
        }
    }
}

impl InHand<&Arc<Shared>> {
    /// See [`Job::run`].
    async fn run(mut self) {
        let shared = self.shared;
        let Some(job) = self.job.as_mut() else {
            return;
        };
        if shared.deadline.load(SeqCst) {
            return; // dropping settles it as cancelled
        }
        let Some(attempt) = job.cell.begin_attempt() else {
            return; // cancelled while queued: already settled
        };
        job.leave_queue(shared);
        let running = shared.counters.running.fetch_add(1, Relaxed) + 1;
        let backlog = &shared.backlog;
        shared
            .metrics
            .started(job.accepted_at.take(), || backlog.len(), running);
        shared
            .events
            .publish(job.cell.id, || EventKind::Started { attempt });
        job.span.record("attempt", attempt);
        let span = job.span.clone();
        let started_at = Stamp::now();
        let end = job.attempt(shared, attempt).instrument(span.clone()).await;
        shared.metrics.attempt_ended(started_at);
        let _entered = span.enter();
        let next = job.after(attempt, end);
        // Taken out of hand: settled or handed to its retry timer, it needs
        // nothing more from the guard.
        let Some(job) = self.job.take() else {
            return;
        };
        match next {
            AfterAttempt::Settle(outcome) => job.settle(shared, outcome),
            AfterAttempt::Retry(error) => job.retry_later(shared, attempt, error),
        }
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
