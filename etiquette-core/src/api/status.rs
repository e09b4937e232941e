//! Where a task stands, and why it did not succeed.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::api::task::BoxError;
use crate::engine::guard::guarded;

/// Where a task stands. Queryable while it runs and, within the queue's
/// status retention, after it finished.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Accepted, waiting for a slot.
    Queued,
    /// Accepted to run at `run_at` (see
    /// [`TaskBuilder::delay`](crate::TaskBuilder::delay)); it then waits in
    /// line for a slot, as a queued task does.
    Scheduled {
        /// When it may start, at the earliest.
        run_at: SystemTime,
    },
    /// Running its `attempt`-th attempt (from 1).
    Running {
        /// The attempt under way.
        attempt: u32,
    },
    /// Attempt `attempt` failed; the next starts after `backoff`, during
    /// which the task holds no slot.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next attempt.
        backoff: Duration,
        /// Why the attempt failed.
        error: TaskError,
    },
    /// Finished successfully.
    Succeeded {
        /// Attempts made, the last one successful.
        attempts: u32,
    },
    /// Finished with an error or a panic that was not retried further.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        error: TaskError,
    },
    /// The last attempt ran past its time limit.
    TimedOut {
        /// Attempts made.
        attempts: u32,
        /// The time limit of each attempt.
        limit: Duration,
    },
    /// Cancelled through its handle or by a release deadline, or dropped by
    /// an executor that shut down.
    Cancelled,
}

impl TaskStatus {
    /// Whether the task has reached its outcome.
    pub const fn is_finished(&self) -> bool {
        matches!(
            self,
            Self::Succeeded { .. } | Self::Failed { .. } | Self::TimedOut { .. } | Self::Cancelled
        )
    }

    /// A short lowercase name: `queued`, `scheduled`, `running`, `retrying`, `succeeded`,
    /// `failed`, `timed_out` or `cancelled`; for JSON and logs.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Scheduled { .. } => "scheduled",
            Self::Running { .. } => "running",
            Self::Retrying { .. } => "retrying",
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The attempt under way, or the attempts made once finished; 0 before
    /// the first attempt and for a task cancelled before it ran.
    pub const fn attempts(&self) -> u32 {
        match self {
            Self::Queued | Self::Scheduled { .. } | Self::Cancelled => 0,
            Self::Running { attempt } | Self::Retrying { attempt, .. } => *attempt,
            Self::Succeeded { attempts }
            | Self::Failed { attempts, .. }
            | Self::TimedOut { attempts, .. } => *attempts,
        }
    }

    /// The outcome a finished task's handle reports: `Ok` if it succeeded,
    /// otherwise why not. A task not finished counts as cancelled.
    pub(crate) fn to_result(&self) -> Result<(), TaskError> {
        match self {
            Self::Succeeded { .. } => Ok(()),
            Self::Failed { error, .. } => Err(error.clone()),
            Self::TimedOut { limit, .. } => Err(TaskError::timed_out(*limit)),
            _ => Err(TaskError::cancelled()),
        }
    }

    /// The error of the last failed attempt, if any.
    pub const fn error(&self) -> Option<&TaskError> {
        match self {
            Self::Retrying { error, .. } | Self::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a task, or one attempt of it, did not succeed. Cheap to clone.
#[derive(Clone)]
pub struct TaskError(Arc<Repr>);

enum Repr {
    /// The task's error, and its `source()` chain rendered once, when it
    /// was judged (under a panic guard: `Display` is user code).
    Failed(UserError, String),
    Panicked(String),
    TimedOut(Duration),
    Cancelled,
}

impl TaskError {
    pub(crate) fn failed(error: BoxError, rendered: String) -> Self {
        Self(Arc::new(Repr::Failed(UserError(Some(error)), rendered)))
    }

    pub(crate) fn panicked(message: String) -> Self {
        Self(Arc::new(Repr::Panicked(message)))
    }

    /// A task that ran past its time limit `limit`
    /// ([`is_timeout`](Self::is_timeout)), as the queue judges it, or as a
    /// durable backend reads it back from storage.
    pub fn timed_out(limit: Duration) -> Self {
        Self(Arc::new(Repr::TimedOut(limit)))
    }

    /// A cancelled task ([`is_cancelled`](Self::is_cancelled)), as the
    /// queue judges it, or as a durable backend reads it back from storage.
    pub fn cancelled() -> Self {
        Self(Arc::new(Repr::Cancelled))
    }

    /// An error known by its message alone, as a durable backend reads it
    /// back from storage: it displays as `message`, and has no
    /// [`task_error`](Self::task_error) to downcast.
    pub fn from_message(message: impl Into<String>) -> Self {
        Self(Arc::new(Repr::Failed(UserError(None), message.into())))
    }

    /// The task's own error, when it returned one.
    pub fn task_error(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        match &*self.0 {
            Repr::Failed(error, _) => error.get(),
            _ => None,
        }
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(*self.0, Repr::Panicked(_))
    }

    /// Whether the task ran past its time limit.
    pub fn is_timeout(&self) -> bool {
        matches!(*self.0, Repr::TimedOut(_))
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(*self.0, Repr::Cancelled)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            Repr::Failed(_, rendered) => f.write_str(rendered),
            Repr::Panicked(message) => write!(f, "panicked: {message}"),
            Repr::TimedOut(limit) => write!(f, "timed out after {limit:?}"),
            Repr::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskError").field(&self.to_string()).finish()
    }
}

/// A task's own error. Its destructor is user code, and the last clone of a
/// `TaskError` may be dropped anywhere, a worker or a lock included: a panic
/// there is logged, never unwound.
struct UserError(Option<BoxError>);

impl UserError {
    fn get(&self) -> Option<&(dyn Error + Send + Sync + 'static)> {
        self.0.as_deref()
    }
}

impl Drop for UserError {
    fn drop(&mut self) {
        if let Some(error) = self.0.take()
            && let Err(message) = guarded("dropping a task's error", move || drop(error))
        {
            tracing::error!("{message}");
        }
    }
}

impl Error for TaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &*self.0 {
            Repr::Failed(error, _) => error.get().map(|error| error as &(dyn Error + 'static)),
            _ => None,
        }
    }
}
