//! One accepted task on its way through the queue, and the ticket that makes
//! sure its outcome is counted exactly once, whatever path it takes.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::FutureExt as _;
use futures_util::future::{Either, select};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};

use crate::spawner::BoxFuture;
use crate::stats::Counters;
use crate::task::{BoxError, TaskId, TaskOutput, error_chain};

/// A task between acceptance and its outcome.
pub(crate) struct Job {
    ticket: Ticket,
    future: BoxFuture<Result<(), BoxError>>,
    span: Span,
    /// Holds one place in the queue's capacity until a worker picks the job up.
    _place: OwnedSemaphorePermit,
}

impl Job {
    pub(crate) fn new<F>(
        id: TaskId,
        task: F,
        counters: Arc<Counters>,
        place: OwnedSemaphorePermit,
    ) -> Self
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        Self {
            // The span is made here, not in the worker, so that its parent is
            // the span current where the task was added (the request's).
            span: tracing::info_span!("task", task_id = id.get()),
            ticket: Ticket {
                id,
                counters,
                state: State::Queued,
            },
            future: Box::pin(async move { task.await.into_result() }),
            _place: place,
        }
    }

    /// Called when the queue refused the job: it was never accepted, so it
    /// must not be reported as cancelled.
    pub(crate) fn reject(mut self) {
        self.ticket.state = State::Settled;
    }

    /// Runs the task to its outcome, unless `cancel` fires first.
    pub(crate) async fn run(self, cancel: &CancellationToken) {
        let Self {
            mut ticket,
            future,
            span,
            _place,
        } = self;
        drop(_place);
        ticket.start();
        let task = AssertUnwindSafe(future)
            .catch_unwind()
            .instrument(span.clone());
        let cancelled = std::pin::pin!(cancel.cancelled());
        // `select` polls the task first, so a task that finishes on its first
        // poll never registers with the cancellation token.
        let outcome = match select(task, cancelled).await {
            Either::Left((Ok(Ok(())), _)) => Outcome::Completed,
            Either::Left((Ok(Err(error)), _)) => Outcome::Failed(error),
            Either::Left((Err(payload), _)) => Outcome::Panicked(payload),
            Either::Right(_) => Outcome::Cancelled,
        };
        let _entered = span.enter();
        ticket.settle(outcome);
    }
}

enum Outcome {
    Completed,
    Failed(BoxError),
    Panicked(Box<dyn Any + Send>),
    Cancelled,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Queued,
    Running,
    Settled,
}

/// Counts a job's outcome exactly once. Dropped unsettled, it reports the job
/// as cancelled: that is how a job lost with its executor is still accounted.
struct Ticket {
    id: TaskId,
    counters: Arc<Counters>,
    state: State,
}

impl Ticket {
    fn start(&mut self) {
        self.counters.running.fetch_add(1, Relaxed);
        self.state = State::Running;
    }

    /// Runs inside the task's span, which carries its id.
    fn settle(&mut self, outcome: Outcome) {
        let counters = &self.counters;
        match outcome {
            Outcome::Completed => {
                counters.completed.fetch_add(1, Relaxed);
                tracing::debug!("task completed");
            }
            Outcome::Failed(error) => {
                counters.failed.fetch_add(1, Relaxed);
                tracing::warn!(error = %error_chain(error.as_ref()), "task failed");
            }
            Outcome::Panicked(payload) => {
                counters.failed.fetch_add(1, Relaxed);
                counters.panicked.fetch_add(1, Relaxed);
                tracing::error!(panic = panic_message(payload.as_ref()), "task panicked");
            }
            Outcome::Cancelled => {
                counters.cancelled.fetch_add(1, Relaxed);
                tracing::warn!("task cancelled while running: release deadline passed");
            }
        }
        if self.state == State::Running {
            counters.running.fetch_sub(1, Relaxed);
        }
        self.state = State::Settled;
    }
}

impl Drop for Ticket {
    /// May run outside the task's span (a queued job dropped by its executor
    /// or by `release`), hence the explicit id.
    fn drop(&mut self) {
        let was = self.state;
        if was == State::Settled {
            return;
        }
        if was == State::Running {
            self.counters.running.fetch_sub(1, Relaxed);
        }
        self.counters.cancelled.fetch_add(1, Relaxed);
        tracing::warn!(
            task_id = self.id.get(),
            was_running = was == State::Running,
            "task cancelled before it finished"
        );
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(non-string panic payload)"
    }
}
