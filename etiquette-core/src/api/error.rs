//! The typed errors of building a queue and of handing it work.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::{BoxError, TaskId};

/// Why a queue could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_concurrent_tasks` was 0: nothing would ever run.
    ZeroConcurrency,
    /// `queue_capacity` was 0: nothing could ever be accepted.
    ZeroCapacity,
    /// `max_concurrent_tasks` was above `u32::MAX`, or `queue_capacity`
    /// above `tokio::sync::Semaphore::MAX_PERMITS`.
    TooLarge,
    /// No spawner was given and none could be found: with the `tokio`
    /// feature this means the queue was built outside a tokio runtime.
    NoRuntime,
    /// The spawner refused to start the queue's workers.
    Spawn(SpawnError),
    /// The spawner cannot make timers: on tokio, the runtime was built
    /// without `enable_time` (or `enable_all`). Time limits, retry backoffs
    /// and release deadlines all need one.
    NoTimer,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroConcurrency => f.write_str("max_concurrent_tasks must be at least 1"),
            Self::ZeroCapacity => f.write_str("queue_capacity must be at least 1"),
            Self::TooLarge => f.write_str("max_concurrent_tasks or queue_capacity is too large"),
            Self::NoRuntime => f.write_str(
                "no runtime to run tasks on: build the queue inside a tokio runtime \
                 or pass a spawner to the builder",
            ),
            Self::Spawn(_) => f.write_str("the spawner refused to start the queue's workers"),
            Self::NoTimer => f.write_str(
                "the spawner cannot make timers: build the tokio runtime with \
                 `enable_time()` or `enable_all()`",
            ),
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Spawn(error) => Some(error),
            _ => None,
        }
    }
}

impl From<SpawnError> for BuildError {
    fn from(error: SpawnError) -> Self {
        Self::Spawn(error)
    }
}

/// Why a task was not accepted. A task that gets this error was dropped
/// without running and is not counted anywhere: the caller still owns the
/// decision of what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddTaskError {
    /// The queue is at capacity. Back off and retry; web adapters answer
    /// `503 Service Unavailable` with a `Retry-After` header.
    Full,
    /// The queue has been released (shut down) and accepts nothing more.
    Released,
    /// The queue's backend could not store the task now (a database that
    /// went away): trying again later may succeed. Web adapters answer
    /// `503 Service Unavailable` with a `Retry-After` header.
    Unavailable(BackendError),
    /// The queue's backend can never store this task: arguments that do
    /// not serialise, or a setting it cannot keep (a `retry_if` predicate
    /// on a durable backend). Web adapters answer `500 Internal Server
    /// Error`.
    Unstorable(BackendError),
}

impl AddTaskError {
    /// Whether trying again later may succeed (`Full`, `Unavailable`), or
    /// never will.
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Full | Self::Unavailable(_))
    }

    /// How long a client should wait before trying again, for a
    /// `Retry-After` header: one second when transient, nothing otherwise.
    pub const fn retry_after(&self) -> Option<std::time::Duration> {
        if self.is_transient() {
            Some(std::time::Duration::from_secs(1))
        } else {
            None
        }
    }
}

impl fmt::Display for AddTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the task queue is full, try again later"),
            Self::Released => f.write_str("the task queue is shutting down"),
            Self::Unavailable(error) => {
                write!(f, "the task queue cannot store tasks now: {error}")
            }
            Self::Unstorable(error) => write!(f, "the task cannot be stored: {error}"),
        }
    }
}

impl Error for AddTaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Unavailable(error) | Self::Unstorable(error) => Some(error),
            _ => None,
        }
    }
}

/// A backend could not do what it was asked: store a task, look one up,
/// cancel one (a database that went away, a job that cannot be stored).
/// Cheap to clone; two are equal when their messages are.
#[derive(Clone)]
pub struct BackendError {
    message: Arc<str>,
    source: Option<Arc<dyn Error + Send + Sync + 'static>>,
}

impl BackendError {
    /// An error saying `message`, caused by `source`; for backends.
    pub fn new(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self {
            message: message.into().into(),
            source: Some(Arc::from(source.into())),
        }
    }

    /// An error saying `message`, with no underlying cause; for backends.
    pub fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into().into(),
            source: None,
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {}", crate::error_chain(&**source))?;
        }
        Ok(())
    }
}

impl fmt::Debug for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BackendError")
            .field(&self.to_string())
            .finish()
    }
}

impl PartialEq for BackendError {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for BackendError {}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn Error + 'static))
    }
}

/// A [`Spawner`](crate::Spawner) could not start a future, typically because
/// its executor has shut down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpawnError {
    _private: (),
}

impl SpawnError {
    /// Creates the error; for implementors of [`Spawner`](crate::Spawner).
    pub const fn new() -> Self {
        Self { _private: () }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the executor refused to spawn a future")
    }
}

impl Error for SpawnError {}

/// Why a finished task was not [retried by hand](crate::Decorum::retry_task).
/// Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryTaskError {
    /// No task with this id is known: never issued, or finished longer ago
    /// than the queue keeps it (the in-memory queue's
    /// [`status_retention`](crate::Builder::status_retention), a durable
    /// backend's pruning).
    Unknown(TaskId),
    /// The task has not finished (queued, scheduled, running or waiting to
    /// retry, perhaps after a retry by hand a moment ago): nothing to do.
    NotFinished(TaskId),
    /// The task succeeded: there is nothing to retry.
    Succeeded(TaskId),
    /// The queue did not keep what the task runs: a closure task of the
    /// in-memory queue (added with [`add_task`](crate::Decorum::add_task)
    /// or [`task`](crate::Decorum::task)), whose work ends with it. Only
    /// typed [`job`](crate::Decorum::job)s are retried by hand.
    NotRetriable(TaskId),
    /// A live task holds the task's [unique key](crate::TaskBuilder::unique_key):
    /// retrying it would make two.
    UniqueKeyHeld {
        /// The task asked to be retried.
        task: TaskId,
        /// The live task holding the key.
        holder: TaskId,
    },
    /// The queue is at capacity (in-memory queue): try again later.
    Full,
    /// The queue has been released and accepts nothing more.
    Released,
    /// The backend could not be asked (a database that went away).
    Backend(BackendError),
}

impl RetryTaskError {
    /// Whether trying again later may succeed (`Full`, `Backend`).
    pub const fn is_transient(&self) -> bool {
        matches!(self, Self::Full | Self::Backend(_))
    }
}

impl fmt::Display for RetryTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(id) => write!(f, "no task {id}"),
            Self::NotFinished(id) => {
                write!(f, "task {id} has not finished: there is nothing to retry")
            }
            Self::Succeeded(id) => write!(f, "task {id} succeeded: there is nothing to retry"),
            Self::NotRetriable(id) => write!(
                f,
                "task {id} cannot be retried: it is a closure task, whose work the queue \
                 does not keep (only typed jobs are retried by hand)"
            ),
            Self::UniqueKeyHeld { task, holder } => write!(
                f,
                "task {task} cannot be retried: live task {holder} holds its unique key"
            ),
            Self::Full => f.write_str("the task queue is full, try again later"),
            Self::Released => f.write_str("the task queue is shutting down"),
            Self::Backend(error) => error.fmt(f),
        }
    }
}

impl Error for RetryTaskError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Backend(error) => Some(error),
            _ => None,
        }
    }
}

impl From<BackendError> for RetryTaskError {
    fn from(error: BackendError) -> Self {
        Self::Backend(error)
    }
}
