//! What a task runs: a future, good for one attempt, or a factory making
//! one future per attempt (closures and typed jobs alike).

use std::future::Future;

use futures_util::FutureExt as _;

use crate::api::spawner::BoxFuture;
use crate::api::task::{BoxError, TaskOutput};
use crate::{RetryPolicy, TaskContext};

pub(crate) type Attempt = BoxFuture<Result<(), BoxError>>;

/// What runs: a future (one attempt only) or a factory making one future per
/// attempt.
pub(crate) enum Work {
    Once(Option<Attempt>),
    // Boxed whole to keep `Accepted` small.
    Retryable(Box<Retryable>),
}

/// A task made again for each attempt.
pub(crate) struct Retryable {
    make: MakeAttempt,
    policy: RetryPolicy,
    /// A typed job's [`Job::NAME`](crate::Job::NAME), for its span.
    kind: Option<&'static str>,
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
        // `into_result` runs inside the attempt, so its panics are caught
        // with the future's.
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

    pub(crate) fn retryable(
        make: MakeAttempt,
        policy: RetryPolicy,
        kind: Option<&'static str>,
    ) -> Self {
        Self::Retryable(Box::new(Retryable { make, policy, kind }))
    }

    pub(crate) fn next_attempt(
        &mut self,
        context: impl FnOnce() -> TaskContext,
    ) -> Option<Attempt> {
        match self {
            Self::Once(task) => task.take(),
            Self::Retryable(retryable) => Some((retryable.make)(context())),
        }
    }

    /// The typed job's name, if it is one.
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Once(_) => None,
            Self::Retryable(retryable) => retryable.kind,
        }
    }

    pub(crate) fn policy(&self) -> Option<&RetryPolicy> {
        match self {
            Self::Once(_) => None,
            Self::Retryable(retryable) => Some(&retryable.policy),
        }
    }
}
