//! Settings for a queue, validated when it is built.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::api::queue::Etiquette;
use crate::backend::{Backend, Memory};
use crate::{BuildError, RetryPolicy, Spawner};

/// What [`Decorum::add_task`](crate::Decorum::add_task) does when the queue
/// is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFull {
    /// Wait, first come first served, until a place frees up: backpressure
    /// reaches the caller.
    #[default]
    Wait,
    /// Return [`AddTaskError::Full`](crate::AddTaskError::Full) at once.
    Reject,
}

/// Configures and builds an [`Etiquette`] queue.
///
/// ```
/// use etiquette_core::{Etiquette, OnFull};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), etiquette_core::BuildError> {
/// let etiquette = Etiquette::builder()
///     .max_concurrent_tasks(8)
///     .queue_capacity(256)
///     .on_full(OnFull::Reject)
///     .build()?;
/// # Ok(()) }
/// ```
#[must_use]
#[derive(Clone)]
pub struct Builder {
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) on_full: OnFull,
    pub(crate) spawner: Option<Arc<dyn Spawner>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) status_retention: usize,
    pub(crate) event_buffer: usize,
    pub(crate) name: &'static str,
}

impl Builder {
    /// Tasks allowed to run at once when none is set.
    pub const DEFAULT_MAX_CONCURRENT_TASKS: usize = 16;
    /// Accepted tasks allowed to wait for a slot when none is set.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
    /// Finished tasks whose status stays queryable when none is set.
    pub const DEFAULT_STATUS_RETENTION: usize = 1024;

    /// Starts from the defaults: 16 concurrent tasks, a queue of 1024,
    /// waiting when full, [`RetryPolicy::default`] for retryable tasks, no
    /// time limit, the status of the last 1024 finished tasks kept, and the
    /// tokio runtime current at `build()`.
    pub const fn new() -> Self {
        Self {
            max_concurrent_tasks: Self::DEFAULT_MAX_CONCURRENT_TASKS,
            queue_capacity: Self::DEFAULT_QUEUE_CAPACITY,
            on_full: OnFull::Wait,
            spawner: None,
            retry: RetryPolicy::exponential(3, Duration::from_secs(1)),
            task_timeout: None,
            status_retention: Self::DEFAULT_STATUS_RETENTION,
            event_buffer: 0,
            name: "default",
        }
    }

    /// The queue's name, the `queue` label of its metrics (feature
    /// `metrics`); `default` unless set.
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Keeps the last `events` task events, so that a subscriber (an SSE
    /// client reconnecting with `Last-Event-ID`, or one reading slowly) can
    /// resume or catch up. The buffer grows as events come, up to `events`:
    /// any size is accepted and costs only what is used. Each subscriber's
    /// live feed holds between 16 and 1,024 events; one falling further
    /// behind catches up from this buffer. With 0 (the default) events are
    /// only published while someone subscribes, and nothing is kept: the
    /// queue pays nothing for events nobody reads.
    pub const fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }

    /// The retry policy of retryable tasks ([`Decorum::task`](crate::Decorum::task))
    /// that set none of their own.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A time limit for each attempt of every task that sets none of its
    /// own. An attempt running longer is cancelled and counts as timed out.
    pub const fn task_timeout(mut self, limit: Duration) -> Self {
        self.task_timeout = Some(limit);
        self
    }

    /// How many finished tasks stay findable by id through
    /// [`Decorum::handle`](crate::Decorum::handle): the last
    /// `finished_tasks` to finish; unfinished tasks always are. Bounds the
    /// memory kept for statuses (finished tasks not retained may linger
    /// unreachable until about as many newer ones are accepted).
    pub const fn status_retention(mut self, finished_tasks: usize) -> Self {
        self.status_retention = finished_tasks;
        self
    }

    /// How many tasks may run at the same time, up to `u32::MAX`. Each slot
    /// in use is one worker future on the executor (about 1 KiB on tokio).
    /// Workers start on demand, when tasks wait and no worker is idle, and
    /// retire once a few others are idle, so memory follows the load, not
    /// this maximum.
    pub const fn max_concurrent_tasks(mut self, max: usize) -> Self {
        self.max_concurrent_tasks = max;
        self
    }

    /// How many accepted tasks may wait for a slot, up to
    /// `Semaphore::MAX_PERMITS`. Running tasks do not count against it;
    /// scheduled tasks and tasks waiting to retry do. A task coming back from a failed attempt
    /// always finds room, even in a full queue: new tasks are accepted
    /// again once the waiting ones are back under capacity. Hence at any
    /// time `queued + scheduled + retrying ≤ queue_capacity +
    /// max_concurrent_tasks`
    /// (see [`Stats`](crate::Stats)). Memory follows use: the line grows as
    /// tasks come.
    pub const fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// What `add_task` does when the queue is full.
    pub const fn on_full(mut self, on_full: OnFull) -> Self {
        self.on_full = on_full;
        self
    }

    /// The executor to run tasks on. Without one, `build()` uses the tokio
    /// runtime it is called from (feature `tokio`).
    pub fn spawner(mut self, spawner: impl Spawner) -> Self {
        self.spawner = Some(Arc::new(spawner));
        self
    }

    /// Validates the settings and starts the queue's workers.
    ///
    /// # Errors
    /// [`BuildError`] for a zero or oversized setting, when no executor is
    /// available, or when the executor refuses the workers.
    pub fn build(self) -> Result<Etiquette, BuildError> {
        let live = self
            .queue_capacity
            .saturating_add(self.max_concurrent_tasks);
        let memory = Memory::new(self.status_retention, live);
        self.build_on(memory)
    }

    /// Validates the settings and starts the queue's workers on `backend`
    /// (a durable one, say). The settings mean the same: at most
    /// `max_concurrent_tasks` run at once in this process, and at most
    /// `queue_capacity` wait in its line.
    ///
    /// # Errors
    /// As [`build`](Self::build), and whatever the backend's
    /// [`start`](crate::backend::Backend::start) returns.
    pub fn build_on<B: Backend>(self, backend: B) -> Result<Etiquette<B>, BuildError> {
        if self.max_concurrent_tasks == 0 {
            return Err(BuildError::ZeroConcurrency);
        }
        if self.queue_capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        if self.queue_capacity > Semaphore::MAX_PERMITS
            || u32::try_from(self.max_concurrent_tasks).is_err()
        {
            return Err(BuildError::TooLarge);
        }
        let spawner = match self.spawner.clone() {
            Some(spawner) => spawner,
            None => default_spawner().ok_or(BuildError::NoRuntime)?,
        };
        // Asked now, not when a retry is first due: tokio panics on making a
        // timer in a runtime without one, which no public API can tell
        // beforehand (tokio-rs/tokio#8361).
        if catch_unwind(AssertUnwindSafe(|| drop(spawner.sleep(Duration::ZERO)))).is_err() {
            return Err(BuildError::NoTimer);
        }
        Etiquette::start(self, spawner, backend)
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("max_concurrent_tasks", &self.max_concurrent_tasks)
            .field("queue_capacity", &self.queue_capacity)
            .field("on_full", &self.on_full)
            .field("custom_spawner", &self.spawner.is_some())
            .field("retry", &self.retry)
            .field("task_timeout", &self.task_timeout)
            .field("status_retention", &self.status_retention)
            .field("event_buffer", &self.event_buffer)
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(feature = "tokio")]
fn default_spawner() -> Option<Arc<dyn Spawner>> {
    crate::TokioSpawner::try_current().map(|spawner| Arc::new(spawner) as Arc<dyn Spawner>)
}

#[cfg(not(feature = "tokio"))]
fn default_spawner() -> Option<Arc<dyn Spawner>> {
    None
}
