//! The typed errors of building a queue and of handing it work.

use std::error::Error;
use std::fmt;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddTaskError {
    /// The queue is at capacity. Back off and retry; web adapters answer
    /// `503 Service Unavailable` with a `Retry-After` header.
    Full,
    /// The queue has been released (shut down) and accepts nothing more.
    Released,
}

impl AddTaskError {
    /// Whether trying again later may succeed (`Full`), or never will
    /// (`Released`).
    pub const fn is_transient(self) -> bool {
        matches!(self, Self::Full)
    }

    /// How long a client should wait before trying again, for a
    /// `Retry-After` header: one second when full, nothing once released.
    pub const fn retry_after(self) -> Option<std::time::Duration> {
        match self {
            Self::Full => Some(std::time::Duration::from_secs(1)),
            Self::Released => None,
        }
    }
}

impl fmt::Display for AddTaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => f.write_str("the task queue is full, try again later"),
            Self::Released => f.write_str("the task queue is shutting down"),
        }
    }
}

impl Error for AddTaskError {}

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
