//! The handle request handlers use ([`Decorum`]): adding tasks, finding
//! them again, subscribing to their events.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use tokio::sync::{SemaphorePermit, TryAcquireError};

use crate::builder::OnFull;
use crate::cell::TaskCell;
use crate::events::EventKind;
use crate::job::{Job, MakeAttempt, Work, guarded};
use crate::queue::Inner;
use crate::shared::Shared;
use crate::worker;
use crate::{
    AddTaskError, RetryPolicy, Stats, Subscription, TaskContext, TaskHandle, TaskId, TaskOutput,
};

/// The cheap, cloneable handle a request handler uses to add tasks.
///
/// Unlike [`Etiquette`] it cannot release the queue, so it is safe to give
/// to every handler. Obtain one with [`Etiquette::decorum`].
#[derive(Clone)]
pub struct Decorum {
    pub(crate) inner: Arc<Inner>,
}

impl Decorum {
    /// Adds a task, waiting for a place if the queue is full (unless it was
    /// built with [`OnFull::Reject`]), and returns its handle once accepted.
    ///
    /// The task is any `Send + 'static` future returning `()` or
    /// `Result<(), E>`; see [`TaskOutput`]. It runs once: a future cannot be
    /// restarted, so to retry, add a factory with [`task`](Self::task). The
    /// queue's default time limit applies. Tasks start in the order they
    /// were accepted.
    ///
    /// The future is first polled when a slot frees up, but whatever it did
    /// when it was *created* happened here: `tokio::time::sleep(d)` starts its
    /// clock on creation, so write `async move { sleep(d).await }` to start
    /// it when the task runs.
    ///
    /// # Errors
    /// [`AddTaskError::Released`] once the queue is released, including while
    /// waiting; [`AddTaskError::Full`] under [`OnFull::Reject`].
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves drops the task: it was not
    /// accepted and will not run.
    pub async fn add_task<F>(&self, task: F) -> Result<TaskHandle, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        self.wait_for_place().await?;
        let timeout = self.inner.shared.config.timeout;
        self.enqueue(Work::once(task), timeout)
    }

    /// Adds a task if there is room now, without waiting.
    ///
    /// # Errors
    /// [`AddTaskError::Full`] when the queue is at capacity (web adapters
    /// answer 503 with `Retry-After`), [`AddTaskError::Released`] after
    /// release. The task is dropped in both cases.
    pub fn try_add_task<F>(&self, task: F) -> Result<TaskHandle, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        self.try_place()?;
        let timeout = self.inner.shared.config.timeout;
        self.enqueue(Work::once(task), timeout)
    }

    /// Prepares a retryable task: `make` is called once per attempt to make
    /// that attempt's future. Set its retry policy and time limit, then
    /// [`add`](TaskBuilder::add) it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use etiquette_core::{Etiquette, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let etiquette = Etiquette::initiate(4)?;
    /// let handle = etiquette
    ///     .decorum()
    ///     .task(|| async { Err::<(), _>("mail server unreachable") })
    ///     .retry(RetryPolicy::exponential(3, Duration::from_secs(1)))
    ///     .timeout(Duration::from_secs(10))
    ///     .add()
    ///     .await?;
    /// let error = handle.outcome().await.unwrap_err();
    /// assert_eq!(error.to_string(), "mail server unreachable");
    /// assert_eq!(handle.status().attempts(), 3);
    /// # Ok(()) }
    /// ```
    pub fn task<M, F>(&self, mut make: M) -> TaskBuilder<'_>
    where
        M: FnMut() -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        self.task_with_context(move |_context| make())
    }

    /// Like [`task`](Self::task), with `make` receiving each attempt's
    /// [`TaskContext`]: the task's id and attempt, and a way to report
    /// progress to event subscribers.
    pub fn task_with_context<M, F>(&self, make: M) -> TaskBuilder<'_>
    where
        M: FnMut(TaskContext) -> F + Send + 'static,
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        TaskBuilder {
            decorum: self,
            make: Work::make_attempt(make),
            retry: None,
            timeout: self.inner.shared.config.timeout,
        }
    }

    /// Subscribes to the events of every task: those still buffered after
    /// event id `after` (all buffered ones with `None`; see
    /// [`Builder::event_buffer`]), then live ones.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        self.inner.shared.events.subscribe(after)
    }

    /// Subscribes to one task's events, as [`subscribe`](Self::subscribe)
    /// does; the subscription ends after the task's final event, which it
    /// delivers exactly once, even if it fell behind or the task finished
    /// before (then from the task's status), unless `after` is at or past
    /// that event's id. `None` if no task with this id is known (see
    /// [`Builder::status_retention`]).
    pub fn subscribe_task(&self, id: TaskId, after: Option<u64>) -> Option<Subscription> {
        let shared = &self.inner.shared;
        let cell = shared.registry.get(id)?;
        Some(shared.events.subscribe_task(cell, after))
    }

    /// The handle of a task still unfinished, or among the most recently
    /// finished (see [`Builder::status_retention`]).
    pub fn handle(&self, id: TaskId) -> Option<TaskHandle> {
        let shared = &self.inner.shared;
        shared
            .registry
            .get(id)
            .map(|cell| TaskHandle::new(cell, Arc::clone(shared)))
    }

    /// Whether the queue has been released and accepts nothing more.
    pub fn is_released(&self) -> bool {
        self.inner.shared.is_released()
    }

    /// A snapshot of the queue's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    // A place is taken here and given back by the line when the task leaves
    // it (see `backlog`): no `Arc` of the semaphore travels with each task,
    // whose count producers and workers would otherwise both write.
    async fn wait_for_place(&self) -> Result<(), AddTaskError> {
        match self.inner.shared.config.on_full {
            // With room in the queue, a plain CAS: no waiter node is built.
            OnFull::Wait if self.try_place().is_ok() => Ok(()),
            OnFull::Wait => self
                .inner
                .shared
                .backlog
                .places
                .acquire()
                .await
                .map(SemaphorePermit::forget)
                .map_err(|_closed| AddTaskError::Released),
            OnFull::Reject => self.try_place(),
        }
    }

    fn try_place(&self) -> Result<(), AddTaskError> {
        self.inner
            .shared
            .backlog
            .places
            .try_acquire()
            .map(SemaphorePermit::forget)
            .map_err(|error| match error {
                TryAcquireError::NoPermits => AddTaskError::Full,
                TryAcquireError::Closed => AddTaskError::Released,
            })
    }

    /// Puts a task in line, under the next id; the caller holds a place.
    fn enqueue(&self, work: Work, timeout: Option<Duration>) -> Result<TaskHandle, AddTaskError> {
        let shared = &self.inner.shared;
        // Counted before joining so that a snapshot never shows a task
        // settled that is not yet accepted.
        shared.counters.accepted.fetch_add(1, SeqCst);
        // Registered and announced under the line's lock, before a worker
        // can claim it: findable and `queued` before it starts.
        // Should making the job panic (its span calls the tracing
        // subscriber), the task was never accepted: the place goes back, the
        // panic goes on. The job is made first, registered after, so that
        // nothing is registered then.
        let refund = Refund(shared);
        let mut forgotten = None;
        let joined = shared.backlog.join(|id| {
            let cell = Arc::new(TaskCell::new(id));
            let job = Job::new(Arc::clone(&cell), work, timeout);
            forgotten = shared.registry.insert(cell);
            shared.events.publish(id, || EventKind::Queued);
            job
        });
        std::mem::forget(refund);
        let added = match joined {
            Ok((cell, summon)) => {
                worker::act(shared, summon);
                shared.metrics.accepted(|| shared.backlog.len());
                Ok(TaskHandle::new(cell, Arc::clone(shared)))
            }
            Err(_refused) => {
                // Only once release has closed the line: never accepted. The
                // task is dropped with the closure, outside any lock.
                shared.backlog.refund_place();
                shared.unaccept();
                Err(AddTaskError::Released)
            }
        };
        if let Some(forgotten) = forgotten {
            forget(forgotten);
        }
        added
    }
}

/// Gives back an adder's place and acceptance if dropped: disarmed (by
/// `mem::forget`) once the task joined the line or was refused.
struct Refund<'a>(&'a Shared);

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        self.0.backlog.refund_place();
        self.0.unaccept();
    }
}

/// Drops the state of tasks the registry forgot, outside its locks: a
/// task's outcome may hold a user's error, whose destructor is user code.
pub(crate) fn forget<T>(cells: T) {
    if let Err(message) = guarded("dropping a forgotten task's state", move || drop(cells)) {
        tracing::error!("{message}");
    }
}

/// A retryable task being prepared; see [`Decorum::task`].
#[must_use = "a task is only queued by `add` or `try_add`"]
pub struct TaskBuilder<'a> {
    decorum: &'a Decorum,
    make: MakeAttempt,
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
}

impl TaskBuilder<'_> {
    /// The retry policy for this task, instead of the queue's default
    /// ([`Builder::retry_policy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A time limit for each attempt, instead of the queue's default
    /// ([`Builder::task_timeout`]).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// No time limit for this task, whatever the queue's default.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    fn work(retry: Option<RetryPolicy>, make: MakeAttempt, decorum: &Decorum) -> Work {
        let policy = retry.unwrap_or_else(|| decorum.inner.shared.config.retry.clone());
        Work::retryable(make, policy)
    }

    /// Adds the task, waiting for a place as [`Decorum::add_task`] does.
    ///
    /// # Errors
    /// As [`Decorum::add_task`].
    pub async fn add(self) -> Result<TaskHandle, AddTaskError> {
        self.decorum.wait_for_place().await?;
        let work = Self::work(self.retry, self.make, self.decorum);
        self.decorum.enqueue(work, self.timeout)
    }

    /// Adds the task if there is room now, as [`Decorum::try_add_task`]
    /// does.
    ///
    /// # Errors
    /// As [`Decorum::try_add_task`].
    pub fn try_add(self) -> Result<TaskHandle, AddTaskError> {
        self.decorum.try_place()?;
        let work = Self::work(self.retry, self.make, self.decorum);
        self.decorum.enqueue(work, self.timeout)
    }
}

impl fmt::Debug for TaskBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
