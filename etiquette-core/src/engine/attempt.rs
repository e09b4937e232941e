//! One accepted task on its way through the queue: its attempts, its
//! retries, and the guarantee that it is accounted for on every path.
//!
//! Every piece of user code the queue calls (the factory making an attempt,
//! the attempt's future, dropping it, the `retry_if` predicate, the error's
//! `Display`, dropping the factory, the spawner's timer) is called through
//! [`guarded`]: a panic in any of them fails the task as panicked, logged
//! with its id, and never unwinds through a worker.

use std::borrow::Borrow;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
use std::task::Poll;
use std::time::Duration;

use futures_util::FutureExt as _;
use tracing::{Instrument as _, Span};

use crate::api::task::{BoxError, error_chain};
use crate::backend::Backend;
use crate::engine::cell::TaskCell;
pub(crate) use crate::engine::guard::guarded;
use crate::engine::guard::panic_message;
use crate::engine::later;
use crate::engine::metrics::Stamp;
use crate::engine::shared::{Outcome, ReportProgress, Shared};
use crate::engine::work::Work;
use crate::{TaskContext, TaskError, TaskId};

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
/// the line.
pub(crate) struct Accepted {
    pub(crate) cell: Arc<TaskCell>,
    /// Lower leaves the line first (see `lanes`).
    pub(crate) priority: i16,
    work: Work,
    timeout: Option<Duration>,
    span: Span,
    /// When the task was accepted, until its first start.
    accepted_at: Option<Stamp>,
}

impl Drop for Accepted {
    /// Dropping the work runs user code (the factory's captures, or a future
    /// that never ran): never let it unwind into a worker.
    fn drop(&mut self) {
        let work = std::mem::replace(&mut self.work, Work::Once(None));
        if let Err(message) = guarded("dropping the task", move || drop(work)) {
            tracing::error!(task_id = self.cell.id.get(), "{message}");
        }
    }
}

impl Accepted {
    /// The task's span. Made as the task is added, not in the worker, so
    /// that its parent is the span current where the task was added: the
    /// request's. Made before anything else: it calls the tracing
    /// subscriber, which may panic.
    /// A typed job's span names its kind (`job`).
    pub(crate) fn span(id: TaskId, kind: Option<&'static str>) -> Span {
        let attempt = tracing::field::Empty;
        match kind {
            None => tracing::info_span!("task", task_id = id.get(), attempt),
            Some(job) => tracing::info_span!("task", task_id = id.get(), job, attempt),
        }
    }

    #[inline]
    pub(crate) fn new(
        cell: Arc<TaskCell>,
        work: Work,
        timeout: Option<Duration>,
        priority: i16,
        span: Span,
    ) -> Self {
        Self {
            priority,
            span,
            cell,
            work,
            timeout,
            accepted_at: Some(Stamp::now()),
        }
    }

    /// A task added to run later is due: its wait in line, as the metrics
    /// count it, starts now.
    pub(crate) fn due_now(&mut self) {
        self.accepted_at = Some(Stamp::now());
    }

    /// Settles the task as cancelled, unless it is settled already: the job
    /// will never run again.
    pub(crate) fn cancel<B: Backend>(self, shared: &Shared<B>) {
        self.settle(shared, Outcome::Cancelled);
    }

    /// Runs attempt `attempt`, claimed by a worker, then settles the task or
    /// schedules its retry.
    pub(crate) fn run<B: Backend>(
        self,
        shared: &Arc<Shared<B>>,
        attempt: u32,
    ) -> impl Future<Output = ()> + '_ {
        // In hand before the future is first polled: dropped even then, it
        // settles the task.
        InHand::new(self, shared).run(attempt)
    }

    /// Races the attempt against its time limit and its cancellation (by
    /// its handle or a release deadline). The attempt is polled first, so
    /// one that finishes at once never polls the timer (which is created
    /// up front, so that the limit counts from the attempt's start) or the
    /// cancel signal.
    async fn attempt<B: Backend>(&mut self, shared: &Arc<Shared<B>>, number: u32) -> AttemptEnd {
        // The timer first: if the spawner cannot make one, no attempt exists
        // yet to drop.
        let mut timer = match self.timeout {
            None => None,
            Some(limit) => match guarded("the spawner's timer", || shared.spawner.sleep(limit)) {
                Ok(timer) => Some((limit, timer)),
                Err(message) => return AttemptEnd::Panicked(message),
            },
        };
        let context = || {
            let report: Arc<dyn ReportProgress> = Arc::clone(shared) as _;
            TaskContext::new(Arc::clone(&self.cell), number, report)
        };
        let attempt = match guarded("the task's factory", || self.work.next_attempt(context)) {
            Ok(Some(attempt)) => attempt,
            // A one-shot task is never retried, so this cannot happen; if it
            // did, the task would be reported cancelled rather than lost.
            Ok(None) => return AttemptEnd::Cancelled,
            Err(message) => return AttemptEnd::Panicked(message),
        };
        let mut attempt = AssertUnwindSafe(attempt).catch_unwind();
        // Not polled, so costing nothing, unless the attempt has to wait. A
        // release deadline fires it too.
        let mut cancelled = pin!(self.cell.cancel.fired());
        let end = poll_fn(|cx| {
            if let Poll::Ready(result) = attempt.poll_unpin(cx) {
                return Poll::Ready(match result {
                    Ok(result) => AttemptEnd::Finished(result),
                    Err(payload) => AttemptEnd::Panicked(panic_message(payload.as_ref())),
                });
            }
            if let Some((limit, timer)) = timer.as_mut() {
                // The spawner's timer is user code too.
                match guarded("the spawner's timer", || timer.as_mut().poll(cx)) {
                    Ok(Poll::Ready(())) => return Poll::Ready(AttemptEnd::TimedOut(*limit)),
                    Ok(Poll::Pending) => {}
                    Err(message) => return Poll::Ready(AttemptEnd::Panicked(message)),
                }
            }
            if cancelled.as_mut().poll(cx).is_ready() {
                return Poll::Ready(AttemptEnd::Cancelled);
            }
            Poll::Pending
        })
        .await;
        // Dropping an unfinished attempt (timed out or cancelled) runs the
        // task's destructors: a panic there is the task's panic.
        match guarded("dropping the task", move || drop((attempt, timer))) {
            Err(message) if !matches!(end, AttemptEnd::Panicked(_)) => {
                AttemptEnd::Panicked(message)
            }
            _ => end,
        }
    }

    /// Whether the task settles after this attempt, or retries.
    fn after(&self, attempt: u32, end: AttemptEnd) -> AfterAttempt {
        let policy = self.work.policy();
        match end {
            AttemptEnd::Finished(Ok(())) => AfterAttempt::Settle(Outcome::Succeeded),
            AttemptEnd::Finished(Err(error)) => {
                let retry = guarded("the retry_if predicate", || {
                    policy.is_some_and(|policy| policy.retries_error(attempt, error.as_ref()))
                });
                let rendered = guarded("the error's Display", || error_chain(error.as_ref()));
                match (retry, rendered) {
                    (Ok(retry), Ok(rendered)) => {
                        let error = TaskError::failed(error, rendered);
                        if retry {
                            AfterAttempt::Retry(error)
                        } else {
                            AfterAttempt::Settle(Outcome::Failed(error))
                        }
                    }
                    (Err(message), _) | (_, Err(message)) => {
                        // Its destructor is user code too.
                        let _ = guarded("dropping the error", move || drop(error));
                        AfterAttempt::Settle(Outcome::Failed(TaskError::panicked(message)))
                    }
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

    fn settle<B: Backend>(&self, shared: &Shared<B>, outcome: Outcome) {
        if let Some(phase) = shared.backlog.settle_held(&self.cell) {
            let attempts = self.cell.attempts();
            shared.record(&self.cell, phase, attempts, outcome);
        }
    }

    /// Settles the task after its last attempt. The work goes first, as its
    /// destructor is user code: a panic there is the task's panic.
    pub(crate) fn finish<B: Backend>(mut self, shared: &Shared<B>, outcome: Outcome) {
        let work = std::mem::replace(&mut self.work, Work::Once(None));
        let dropped = match work {
            // A closure task's future: nothing else is kept of it. Told
            // apart here, by the match that dropping the work would make
            // anyway, so that the bookkeeping of typed jobs below costs it
            // nothing.
            Work::Once(attempt) => guarded("dropping the task", move || drop(attempt)),
            Work::Retryable(retryable) => {
                // A typed job that succeeded is not kept for a retry by
                // hand: it goes with its work (its destructor is the job's,
                // user code too).
                let kept = match outcome {
                    Outcome::Succeeded if retryable.is_typed() => self.cell.take_kept(),
                    _ => None,
                };
                guarded("dropping the task", move || drop((retryable, kept)))
            }
        };
        let outcome = match dropped {
            Err(message) => Outcome::Failed(TaskError::panicked(message)),
            Ok(()) => outcome,
        };
        self.settle(shared, outcome);
    }

    /// The task leaves this process, its retry stored by its backend:
    /// accounted for as handed back, its slot and work freed.
    pub(crate) fn hand_back<B: Backend>(self, shared: &Shared<B>) {
        self.cell.handed_back.store(true, Release);
        if let Some(phase) = shared.backlog.settle_held(&self.cell) {
            shared.record_handed_back(phase);
        }
    }

    /// Hands the task to its backend to wait `attempt`'s backoff before its
    /// next attempt.
    fn retry_later<B: Backend>(self, shared: &Arc<Shared<B>>, attempt: u32, error: TaskError) {
        let Some(delay) = self.work.policy().map(|policy| policy.next_delay(attempt)) else {
            self.cancel(shared); // unreachable: only retryable work retries
            return;
        };
        later::retry(self, shared, (attempt, delay), error);
    }
}

/// A job in the hands of a worker or a retry timer. Dropped before the job
/// is settled (by a release deadline, or with an executor that shut down),
/// it reports the task cancelled.
pub(crate) struct InHand<B: Backend, H: Borrow<Arc<Shared<B>>>> {
    /// `None` once handed on, to the line or a retry timer.
    pub(crate) job: Option<Accepted>,
    pub(crate) shared: H,
    store: PhantomData<B>,
}

impl<B: Backend, H: Borrow<Arc<Shared<B>>>> InHand<B, H> {
    pub(crate) const fn new(job: Accepted, shared: H) -> Self {
        Self {
            job: Some(job),
            shared,
            store: PhantomData,
        }
    }
}

impl<B: Backend, H: Borrow<Arc<Shared<B>>>> Drop for InHand<B, H> {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let outcome = if std::thread::panicking() {
                // Code the queue runs around the task panicked (a tracing
                // subscriber, a metrics recorder): the worker catches it,
                // and the task is reported for it, not silently cancelled.
                Outcome::Failed(TaskError::panicked(
                    "(in code run around the task: tracing, metrics or the spawner)".to_owned(),
                ))
            } else {
                Outcome::Cancelled
            };
            job.settle(self.shared.borrow(), outcome);
        }
    }
}

impl<B: Backend> InHand<B, &Arc<Shared<B>>> {
    /// See [`Accepted::run`].
    async fn run(mut self, attempt: u32) {
        let shared = self.shared;
        let Some(job) = self.job.as_mut() else {
            return;
        };
        if shared.deadline.load(SeqCst) {
            return; // dropping settles it as cancelled
        }
        let backlog = &shared.backlog;
        shared.metrics.started(
            job.accepted_at.take(),
            || backlog.len(),
            shared.counters.running.load(Relaxed),
        );
        shared.started(&job.cell, attempt, &job.work);
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
            AfterAttempt::Settle(outcome) => job.finish(shared, outcome),
            AfterAttempt::Retry(error) => job.retry_later(shared, attempt, error),
        }
    }
}
