//! The queue ([`Etiquette`]) and the handle request handlers use ([`Decorum`]).

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_channel::{Receiver, Sender};
use futures_util::future::{Either, select};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use crate::builder::{Builder, OnFull};
use crate::job::Job;
use crate::stats::Counters;
use crate::worker::work;
use crate::{AddTaskError, BuildError, ReleaseReport, Spawner, Stats, TaskId, TaskOutput};

/// A semaphored background queue: accepts tasks, runs at most
/// `max_concurrent_tasks` of them at once, and accounts for every one.
///
/// `Etiquette` is the owner's handle, kept where the application starts and
/// stops: it hands out [`Decorum`]s and [`release`](Self::release)s the
/// queue. Cloning is cheap (one `Arc`). Dropping every handle without
/// releasing does not discard anything: the workers still run every accepted
/// task, then stop.
#[derive(Clone)]
pub struct Etiquette {
    inner: Arc<Inner>,
}

/// The cheap, cloneable handle a request handler uses to add tasks.
///
/// Unlike [`Etiquette`] it cannot release the queue, so it is safe to give
/// to every handler. Obtain one with [`Etiquette::decorum`].
#[derive(Clone)]
pub struct Decorum {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Sender<Job>,
    /// Kept to measure the backlog and to drain what no worker is left to run.
    backlog: Receiver<Job>,
    /// One permit per place in the queue; a job gives its permit back when a
    /// worker picks it up. Closed on release, which wakes waiting adders.
    places: Arc<Semaphore>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    /// One permit per worker, held for the worker's whole life: all of them
    /// free means every worker has stopped.
    slots: Arc<Semaphore>,
    spawner: Arc<dyn Spawner>,
    next_id: AtomicU64,
    on_full: OnFull,
    max_concurrent_tasks: usize,
    queue_capacity: usize,
}

impl Etiquette {
    /// Builds a queue running at most `max_concurrent_tasks` tasks at once on
    /// the current tokio runtime, with the default capacity of
    /// [`Builder::DEFAULT_QUEUE_CAPACITY`].
    ///
    /// # Errors
    /// [`BuildError::ZeroConcurrency`] for 0, [`BuildError::NoRuntime`]
    /// outside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub fn initiate(max_concurrent_tasks: usize) -> Result<Self, BuildError> {
        Builder::new()
            .max_concurrent_tasks(max_concurrent_tasks)
            .build()
    }

    /// Starts configuring a queue.
    pub const fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn start(config: &Builder, spawner: Arc<dyn Spawner>) -> Result<Self, BuildError> {
        let (jobs, backlog) = async_channel::unbounded();
        let inner = Inner {
            jobs,
            backlog,
            places: Arc::new(Semaphore::new(config.queue_capacity)),
            counters: Arc::default(),
            cancel: CancellationToken::new(),
            slots: Arc::new(Semaphore::new(config.max_concurrent_tasks)),
            spawner,
            next_id: AtomicU64::new(0),
            on_full: config.on_full,
            max_concurrent_tasks: config.max_concurrent_tasks,
            queue_capacity: config.queue_capacity,
        };
        for _ in 0..inner.max_concurrent_tasks {
            let slot = Arc::clone(&inner.slots)
                .try_acquire_owned()
                .expect("one permit per worker");
            let worker = work(inner.backlog.clone(), inner.cancel.clone(), slot);
            if let Err(error) = inner.spawner.spawn(Box::pin(worker)) {
                inner.close_intake();
                return Err(error.into());
            }
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// A handle for request handlers.
    pub fn decorum(&self) -> Decorum {
        Decorum {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Stops intake, then waits until every accepted task, queued or
    /// running, has finished, and reports what happened to all of them.
    ///
    /// Calling it again, or concurrently, is harmless: each call waits for
    /// the same drain and returns the same totals.
    ///
    /// Waits as long as the tasks take; a task that never finishes keeps it
    /// waiting. Use [`release_timeout`](Self::release_timeout) to bound that.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: intake stays closed and
    /// the tasks keep running.
    pub async fn release(&self) -> ReleaseReport {
        self.inner.close_intake();
        self.inner.workers_stopped().await;
        self.inner.finish()
    }

    /// Like [`release`](Self::release), but when `timeout` passes first,
    /// cancels every task still unfinished: running tasks are dropped at
    /// their next `.await`, queued ones never start. All of them are counted
    /// in [`ReleaseReport::cancelled`].
    ///
    /// Cancellation takes effect when a task yields: a task blocking its
    /// thread without ever yielding still delays the return.
    ///
    /// # Cancel safety
    /// As for `release`. Once the deadline has fired, the cancellation
    /// stands even if this future is dropped.
    pub async fn release_timeout(&self, timeout: Duration) -> ReleaseReport {
        self.inner.close_intake();
        let drained = pin!(self.inner.workers_stopped());
        if let Either::Right(((), drained)) =
            select(drained, self.inner.spawner.sleep(timeout)).await
        {
            tracing::warn!(
                ?timeout,
                "release deadline passed: cancelling unfinished tasks"
            );
            self.inner.cancel.cancel();
            drained.await;
        }
        self.inner.finish()
    }

    /// Whether [`release`](Self::release) has been called.
    pub fn is_released(&self) -> bool {
        self.inner.jobs.is_closed()
    }

    /// A snapshot of the queue's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }
}

impl Decorum {
    /// Adds a task, waiting for a place if the queue is full (unless it was
    /// built with [`OnFull::Reject`]), and returns its id once accepted.
    ///
    /// The task is any `Send + 'static` future returning `()` or
    /// `Result<(), E>`; see [`TaskOutput`]. Tasks start in the order they
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
    pub async fn add_task<F>(&self, task: F) -> Result<TaskId, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let place = match self.inner.on_full {
            OnFull::Wait => Arc::clone(&self.inner.places)
                .acquire_owned()
                .await
                .map_err(|_closed| AddTaskError::Released)?,
            OnFull::Reject => self.inner.try_place()?,
        };
        self.inner.enqueue(task, place)
    }

    /// Adds a task if there is room now, without waiting.
    ///
    /// # Errors
    /// [`AddTaskError::Full`] when the queue is at capacity (web adapters
    /// answer 503 with `Retry-After`), [`AddTaskError::Released`] after
    /// release. The task is dropped in both cases.
    pub fn try_add_task<F>(&self, task: F) -> Result<TaskId, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let place = self.inner.try_place()?;
        self.inner.enqueue(task, place)
    }

    /// Whether the queue has been released and accepts nothing more.
    pub fn is_released(&self) -> bool {
        self.inner.jobs.is_closed()
    }

    /// A snapshot of the queue's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }
}

impl From<&Etiquette> for Decorum {
    fn from(etiquette: &Etiquette) -> Self {
        etiquette.decorum()
    }
}

impl Inner {
    fn try_place(&self) -> Result<OwnedSemaphorePermit, AddTaskError> {
        Arc::clone(&self.places)
            .try_acquire_owned()
            .map_err(|error| match error {
                TryAcquireError::NoPermits => AddTaskError::Full,
                TryAcquireError::Closed => AddTaskError::Released,
            })
    }

    fn enqueue<F>(&self, task: F, place: OwnedSemaphorePermit) -> Result<TaskId, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let id = TaskId::new(self.next_id.fetch_add(1, Relaxed) + 1);
        let job = Job::new(id, task, Arc::clone(&self.counters), place);
        // Counted before sending so that a snapshot never shows a task
        // settled that is not yet accepted.
        self.counters.accepted.fetch_add(1, Relaxed);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(id),
            Err(refused) => {
                // Only possible when release closed the channel after we got
                // our place: the task was never accepted.
                self.counters.accepted.fetch_sub(1, Relaxed);
                refused.into_inner().reject();
                Err(AddTaskError::Released)
            }
        }
    }

    async fn workers_stopped(&self) {
        // Never closed, so this only returns once every slot is back. The
        // permits are handed back at once: other release calls wait for them.
        let all = u32::try_from(self.max_concurrent_tasks).expect("checked by the builder");
        drop(self.slots.acquire_many(all).await);
    }

    fn close_intake(&self) {
        self.places.close();
        self.jobs.close();
    }

    /// Settles whatever no worker was left to run, then reports.
    fn finish(&self) -> ReleaseReport {
        // Normally empty; non-empty only if the executor dropped the workers.
        // Dropping a job reports it cancelled.
        while let Ok(job) = self.backlog.try_recv() {
            drop(job);
        }
        let report = ReleaseReport::from(self.counters.snapshot(0));
        tracing::debug!(%report, "queue released");
        report
    }

    fn stats(&self) -> Stats {
        self.counters.snapshot(self.backlog.len())
    }
}

impl fmt::Debug for Etiquette {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug("Etiquette", f)
    }
}

impl fmt::Debug for Decorum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug("Decorum", f)
    }
}

impl Inner {
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct(name)
            .field("max_concurrent_tasks", &self.max_concurrent_tasks)
            .field("queue_capacity", &self.queue_capacity)
            .field("queued", &stats.queued)
            .field("running", &stats.running)
            .field("released", &self.jobs.is_closed())
            .finish()
    }
}
