//! The handle request handlers use ([`Decorum`]): adding tasks, finding
//! them again, subscribing to their events.

use std::future::Future;
use std::sync::Arc;

use crate::api::queue::Inner;
use crate::backend::options::Plan;
use crate::backend::{Backend, Engine, Memory};
use crate::engine::intake::{try_place, wait_for_place};
use crate::engine::work::{MemoryWork, Work};
use crate::memory::enqueue::enqueue;
use crate::{
    AddTaskError, BackendError, Job, RetryTaskError, Stats, StoredJobs, Subscription, TaskBuilder,
    TaskContext, TaskHandle, TaskId, TaskOutput, TaskStatus,
};

/// The cheap, cloneable handle a request handler uses to add tasks.
///
/// Unlike [`Etiquette`](crate::Etiquette) it cannot release the queue, so it is safe to give
/// to every handler. Obtain one with [`Etiquette::decorum`](crate::Etiquette::decorum).
pub struct Decorum<B: Backend = Memory> {
    pub(crate) inner: Arc<Inner<B>>,
}

clone_by_field!(Decorum, inner);

impl Decorum {
    /// Adds a task, waiting for a place if the queue is full (unless it was
    /// built with [`OnFull::Reject`](crate::OnFull::Reject)), and returns its handle once accepted.
    ///
    /// The task is any `Send + 'static` future returning `()` or
    /// `Result<(), E>`; see [`TaskOutput`]. It runs once: a future cannot be
    /// restarted, so to retry, add a factory with [`task`](Self::task). The
    /// queue's default time limit applies. Tasks start in the order they
    /// were accepted, unless added with a [priority](TaskBuilder::priority)
    /// or a [start time](TaskBuilder::delay). Closure tasks live in this
    /// process only: on a durable backend, add typed [`job`](Self::job)s.
    ///
    /// The future is first polled when a slot frees up, but whatever it did
    /// when it was *created* happened here: `tokio::time::sleep(d)` starts its
    /// clock on creation, so write `async move { sleep(d).await }` to start
    /// it when the task runs.
    ///
    /// # Errors
    /// [`AddTaskError::Released`] once the queue is released, including while
    /// waiting; [`AddTaskError::Full`] under [`OnFull::Reject`](crate::OnFull::Reject).
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves drops the task: it was not
    /// accepted and will not run.
    pub async fn add_task<F>(&self, task: F) -> Result<TaskHandle, AddTaskError>
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let shared = &self.inner.shared;
        wait_for_place(shared).await?;
        enqueue(shared, Work::once(task), Plan::now(shared.config.timeout))
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
        let shared = &self.inner.shared;
        try_place(shared)?;
        enqueue(shared, Work::once(task), Plan::now(shared.config.timeout))
    }

    /// Prepares a retryable task: `make` is called once per attempt to make
    /// that attempt's future. Set its retry policy, time limit, start time,
    /// priority or unique key, then [`add`](TaskBuilder::add) it.
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
    /// assert_eq!(handle.status_now().attempts(), 3);
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
        TaskBuilder::new(self, MemoryWork::closure(Work::make_attempt(make)), None)
    }

    /// The handle of a task still unfinished, or among the most recently
    /// finished (see [`Builder::status_retention`](crate::Builder::status_retention)),
    /// without `.await`: [`find`](Self::find) on the in-memory queue.
    pub fn handle(&self, id: TaskId) -> Option<TaskHandle> {
        let shared = &self.inner.shared;
        let cell = shared.backend.find(id)?;
        Some(TaskHandle::local(cell, shared, false))
    }

    /// [`subscribe_task`](Self::subscribe_task) without `.await`, on the
    /// in-memory queue.
    pub fn subscribe_task_now(&self, id: TaskId, after: Option<u64>) -> Option<Subscription> {
        let shared = &self.inner.shared;
        let cell = shared.backend.find(id)?;
        Some(shared.events.subscribe_task(cell, after))
    }
}

impl<B: Backend> Decorum<B> {
    fn engine(&self) -> Engine<B> {
        Engine::new(Arc::clone(&self.inner.shared))
    }

    /// Prepares a typed job (see [`Job`]): set its retry policy, time limit,
    /// start time, priority or unique key, then [`add`](TaskBuilder::add)
    /// it. Each attempt calls [`Job::run`].
    pub fn job<J: Job>(&self, job: J) -> TaskBuilder<'_, B> {
        TaskBuilder::new(self, B::work(job), Some(J::NAME))
    }

    /// Subscribes to the events of every task: those still buffered after
    /// event id `after` (all buffered ones with `None`; see
    /// [`Builder::event_buffer`](crate::Builder::event_buffer)), then live ones.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        self.inner.shared.events.subscribe(after)
    }

    /// Subscribes to one task's events, as [`subscribe`](Self::subscribe)
    /// does; the subscription ends after the task's final event, which it
    /// delivers exactly once, even if it fell behind or the task finished
    /// before (then from the task's status), unless `after` is at or past
    /// that event's id. `None` if no task with this id is known (see
    /// [`Builder::status_retention`](crate::Builder::status_retention)).
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn subscribe_task(
        &self,
        id: TaskId,
        after: Option<u64>,
    ) -> Result<Option<Subscription>, BackendError> {
        B::subscribe_task(&self.engine(), id, after).await
    }

    /// The handle of a task the queue knows: unfinished, or finished
    /// recently enough to be retained.
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn find(&self, id: TaskId) -> Result<Option<TaskHandle<B>>, BackendError> {
        B::find(&self.engine(), id).await
    }

    /// Retries by hand task `id`, a typed [`job`](Self::job) that ended
    /// failed, timed out or cancelled, as "retry now" on a dead job in
    /// River (`JobRetry`) or Oban (`retry_job`): it goes back to waiting,
    /// due now, under the **same id**. Its attempts go on counting (its next
    /// is attempt n + 1) and its retry policy still applies; if it had used
    /// up its attempts, it gets one more (`max_attempts` becomes n + 1).
    /// Its status reads [`Queued`](TaskStatus::Queued) again, a
    /// [`Queued`](crate::EventKind::Queued) event announces it, its next
    /// attempt publishes its events as any does, and [`find`](Self::find)
    /// gives a handle on its new life. Returns that handle.
    ///
    /// On the in-memory queue the retried task takes a queue place as an
    /// added task does, and is counted accepted again
    /// ([`Stats::accepted`]); its earlier outcome stays counted (failed or
    /// cancelled), and the new life's is counted when it settles. Its work
    /// is kept for this from when it is added until it succeeds, and after
    /// it failed or was cancelled for as long as the queue keeps the task
    /// ([`Builder::status_retention`](crate::Builder::status_retention))
    /// or a handle on it lives. A closure task keeps nothing: its work ends
    /// with it, and it cannot be retried. On a durable backend the job's
    /// row goes back to waiting, and any process may claim it.
    ///
    /// A handle taken before the retry follows the task into its new life
    /// (see [`TaskHandle::outcome`]).
    ///
    /// ```
    /// use etiquette_core::{Etiquette, Job, RetryPolicy, RetryTaskError, TaskContext, TaskStatus};
    /// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    ///
    /// static MAIL_SERVER_UP: AtomicBool = AtomicBool::new(false);
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Welcome;
    ///
    /// impl Job for Welcome {
    ///     const NAME: &'static str = "welcome";
    ///     type Error = &'static str;
    ///     async fn run(&self, _: TaskContext) -> Result<(), Self::Error> {
    ///         if MAIL_SERVER_UP.load(SeqCst) { Ok(()) } else { Err("mail server down") }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let etiquette = Etiquette::initiate(4)?;
    /// let decorum = etiquette.decorum();
    /// let welcome = decorum.job(Welcome).retry(RetryPolicy::never()).add().await?;
    /// assert!(welcome.outcome().await.is_err()); // its one attempt failed
    ///
    /// MAIL_SERVER_UP.store(true, SeqCst);
    /// let again = decorum.retry_task(welcome.id()).await?;
    /// assert_eq!(again.id(), welcome.id());
    /// again.outcome().await?;
    /// assert!(matches!(again.status_now(), TaskStatus::Succeeded { attempts: 2 }));
    /// assert_eq!(
    ///     decorum.retry_task(welcome.id()).await.unwrap_err(),
    ///     RetryTaskError::Succeeded(welcome.id())
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`RetryTaskError`], having changed nothing: the task is unknown, has
    /// not finished, succeeded, is a closure task, a live task holds its
    /// unique key; the queue is full (in memory) or released; the backend
    /// could not be asked.
    pub async fn retry_task(&self, id: TaskId) -> Result<TaskHandle<B>, RetryTaskError> {
        B::retry(&self.engine(), id).await
    }

    /// Where task `id` stands, if the queue knows it (see
    /// [`find`](Self::find)).
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn status(&self, id: TaskId) -> Result<Option<TaskStatus>, BackendError> {
        match self.find(id).await? {
            Some(handle) => handle.status().await.map(Some),
            None => Ok(None),
        }
    }

    /// Whether the queue has been released and accepts nothing more.
    pub fn is_released(&self) -> bool {
        self.inner.shared.is_released()
    }

    /// A snapshot of the queue's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    /// The jobs a durable backend stores for the queue, by state, across
    /// every process that works it (a query; see [`StoredJobs`]); `None`
    /// on the in-memory queue, whose [`stats`](Self::stats) are the whole
    /// truth.
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn stored_jobs(&self) -> Result<Option<StoredJobs>, BackendError> {
        B::stored_jobs(&self.engine()).await
    }
}
