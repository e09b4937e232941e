//! What a task runs: a future, good for one attempt, or a factory making
//! one future per attempt (closures and typed jobs alike).

use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt as _;

use crate::api::spawner::BoxFuture;
use crate::api::task::{BoxError, TaskOutput};
use crate::engine::cell::Lives;
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
    /// What the in-memory queue keeps of a typed job to retry it by hand,
    /// on its way to the job's cell (see [`Work::accepted`]).
    lives: Option<Arc<Lives>>,
}

/// Makes one attempt's future; boxed once, when the task is added.
pub(crate) type MakeAttempt = Box<dyn FnMut(TaskContext) -> Attempt + Send>;

/// Makes attempts of a typed job, as often as asked and shareable: what the
/// in-memory queue keeps of a typed job, to make it again for a retry by
/// hand.
pub(crate) type Remake = Arc<dyn Fn(TaskContext) -> Attempt + Send + Sync>;

/// A task as the in-memory queue takes it in (its
/// [`Backend::Work`](crate::backend::Backend::Work)): what makes each
/// attempt, and, for a typed job, what makes it again should it be
/// [retried by hand](crate::Decorum::retry_task) after it ended.
pub struct MemoryWork {
    pub(crate) make: MakeAttempt,
    pub(crate) again: Option<Remake>,
}

impl MemoryWork {
    /// A closure task's factory: not kept once the task ends.
    pub(crate) fn closure(make: MakeAttempt) -> Self {
        Self { make, again: None }
    }

    /// A typed job's attempts, made by `remake`, which is kept.
    pub(crate) fn typed(remake: Remake) -> Self {
        let again = Arc::clone(&remake);
        Self {
            make: Box::new(move |context| remake(context)),
            again: Some(again),
        }
    }
}

impl std::fmt::Debug for MemoryWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryWork")
            .field("typed", &self.again.is_some())
            .finish_non_exhaustive()
    }
}

impl Retryable {
    /// Whether this is a typed job (it has a kind).
    pub(crate) const fn is_typed(&self) -> bool {
        self.kind.is_some()
    }
}

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

    /// [`make_attempt`](Self::make_attempt) for a factory that can be
    /// shared: a typed job's.
    pub(crate) fn remake<M, F>(make: M) -> Remake
    where
        M: Fn(TaskContext) -> F + Send + Sync + 'static,
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        Arc::new(move |context| -> Attempt { Box::pin(make(context).map(TaskOutput::into_result)) })
    }

    pub(crate) fn retryable(
        make: MakeAttempt,
        policy: RetryPolicy,
        kind: Option<&'static str>,
    ) -> Self {
        Self::keeping(make, policy, kind, None)
    }

    /// [`retryable`](Self::retryable) work carrying, for a typed job of
    /// the in-memory queue, what is kept of it to retry it by hand.
    pub(crate) fn keeping(
        make: MakeAttempt,
        policy: RetryPolicy,
        kind: Option<&'static str>,
        lives: Option<Arc<Lives>>,
    ) -> Self {
        Self::Retryable(Box::new(Retryable {
            make,
            policy,
            kind,
            lives,
        }))
    }

    /// As the task is accepted: its kind, for its span, and what is kept of
    /// a typed job, taken out for its cell. Both in one look at the work,
    /// so that a task keeping nothing pays no step for it.
    #[inline]
    pub(crate) fn accepted(&mut self) -> (Option<&'static str>, Option<Arc<Lives>>) {
        match self {
            Self::Once(_) => (None, None),
            Self::Retryable(retryable) => (retryable.kind, retryable.lives.take()),
        }
    }

    /// A typed job's [`Job::NAME`](crate::Job::NAME), for its events.
    /// Called only when someone listens to them; out of line so that the
    /// compiler does not read the work ahead of that check, on every
    /// task's path (inlined, its loads were hoisted above it: 4
    /// instructions per task at a worker's start, 4 at acceptance).
    #[inline(never)]
    pub(crate) fn kind(&self) -> Option<&'static str> {
        match self {
            Self::Once(_) => None,
            Self::Retryable(retryable) => retryable.kind,
        }
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

    pub(crate) fn policy(&self) -> Option<&RetryPolicy> {
        match self {
            Self::Once(_) => None,
            Self::Retryable(retryable) => Some(&retryable.policy),
        }
    }
}
