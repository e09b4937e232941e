//! The in-memory queue, the engine's first [`Backend`]: what the queue
//! knows of each task, kept in this process. Accepting a task (`enqueue`),
//! the registry finding tasks' cells by id, and the unique keys of live
//! tasks (`unique`). The engine keeps the tasks waiting to start or retry
//! on its own timers, and publishes their events.

pub(crate) mod enqueue;
pub(crate) mod registry;
pub(crate) mod retry;
pub(crate) mod unique;

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::api::job::Job;
use crate::backend::{Backend, Backoff, Engine, JobOptions, LocalTask, TaskRef};
use crate::engine::cell::{Lives, TaskCell};
use crate::engine::intake::wait_for_place;
use crate::engine::shared::Shared;
use crate::engine::work::{MemoryWork, Work};
use crate::{
    AddTaskError, BackendError, RetryTaskError, Subscription, TaskError, TaskHandle, TaskId,
    TaskStatus,
};
use enqueue::{enqueue_retryable, forget, holder};
use registry::Registry;
use unique::{Keys, Reservation, UniqueKeys};

/// The in-memory queue: the default [`Backend`], keeping every task in this
/// process. Nothing is serialised, closure tasks are welcome, lookups
/// answer at once (its handles also answer without `.await`:
/// [`TaskHandle::status_now`], [`TaskHandle::cancel_now`]), and nothing
/// survives the process.
pub struct Memory {
    registry: Registry,
    unique: UniqueKeys,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory").finish_non_exhaustive()
    }
}

impl Memory {
    pub(crate) fn new(status_retention: usize, live: usize) -> Self {
        Self {
            registry: Registry::new(status_retention, live),
            unique: UniqueKeys::default(),
        }
    }

    /// A task accepted under `id`, to start at once or at `start`, keeping
    /// `lives` if it is a typed job: its cell, registered, and the older
    /// cell the registry forgot for it, if any.
    #[inline]
    pub(crate) fn accepted(
        &self,
        id: TaskId,
        start: Option<SystemTime>,
        lives: Option<Arc<Lives>>,
    ) -> (Arc<TaskCell>, Option<Arc<TaskCell>>) {
        // Each made straight into its allocation: a cell is too big to copy.
        let cell = match start {
            None => Arc::new(TaskCell::new(id).keeping(lives)),
            Some(at) => Arc::new(TaskCell::scheduled(id, at).keeping(lives)),
        };
        let forgotten = self.registry.insert(Arc::clone(&cell));
        (cell, forgotten)
    }

    /// The cell of a task still unfinished or retained.
    pub(crate) fn find(&self, id: TaskId) -> Option<Arc<TaskCell>> {
        self.registry.get(id)
    }

    /// Puts the next life of a task retried by hand in place of the old
    /// one; returns the old one, to drop outside any lock.
    pub(crate) fn replace(&self, cell: Arc<TaskCell>) -> Option<Arc<TaskCell>> {
        self.registry.replace(cell)
    }

    /// Held while a task with a unique key is checked and accepted.
    pub(crate) fn keys(&self) -> MutexGuard<'_, Keys> {
        self.unique.lock()
    }

    /// See [`UniqueKeys::reserve`].
    pub(crate) fn reserve_key(&self) -> Reservation<'_> {
        self.unique.reserve()
    }
}

/// Adds a task made by `make` as `options` say: the live task holding its
/// unique key if there is one, otherwise a new task once a place is free.
pub(crate) async fn add(
    shared: &Arc<Shared>,
    kind: Option<&'static str>,
    work: MemoryWork,
    options: JobOptions,
) -> Result<TaskHandle, AddTaskError> {
    if let Some(live) = duplicate_of(shared, &options) {
        return Ok(live);
    }
    wait_for_place(shared).await?;
    let JobOptions { plan, retry } = options;
    enqueue_retryable(shared, (work, retry, kind), plan)
}

/// The live task holding the unique key of a task about to be added,
/// unless the queue is released.
pub(crate) fn duplicate_of(shared: &Arc<Shared>, options: &JobOptions) -> Option<TaskHandle> {
    if shared.is_released() {
        return None;
    }
    holder(shared, options.unique_key())
}

impl Backend for Memory {
    type Ticket = LocalTask;
    type Work = MemoryWork;

    /// The job, shared by its attempts and kept with its task, so that it
    /// can be [retried by hand](crate::Decorum::retry_task) once it ended.
    fn work<J: Job>(job: J) -> MemoryWork {
        let job = Arc::new(job);
        MemoryWork::typed(Work::remake(move |context| {
            let job = Arc::clone(&job);
            async move { job.run(context).await }
        }))
    }

    async fn add(
        engine: &Engine<Self>,
        name: Option<&'static str>,
        work: MemoryWork,
        options: JobOptions,
    ) -> Result<TaskHandle, AddTaskError> {
        add(&engine.shared, name, work, options).await
    }

    async fn find(engine: &Engine<Self>, id: TaskId) -> Result<Option<TaskHandle>, BackendError> {
        let cell = engine.backend().find(id);
        Ok(cell.map(|cell| engine.handle(id, LocalTask::new(cell), false)))
    }

    async fn status(
        _engine: &Engine<Self>,
        _id: TaskId,
        task: &LocalTask,
    ) -> Result<TaskStatus, BackendError> {
        Ok(task.status())
    }

    /// Cancels the task's latest life (see [`LocalTask::status`]).
    async fn cancel(
        engine: &Engine<Self>,
        _id: TaskId,
        task: &LocalTask,
    ) -> Result<bool, BackendError> {
        Ok(engine.shared.cancel(&task.cell.latest()))
    }

    /// A typed job's task that ended failed, timed out or cancelled, while
    /// the queue still keeps it (its
    /// [`status_retention`](crate::Builder::status_retention)); see
    /// [`Decorum::retry_task`](crate::Decorum::retry_task).
    async fn retry(engine: &Engine<Self>, id: TaskId) -> Result<TaskHandle, RetryTaskError> {
        retry::retry(&engine.shared, id)
    }

    async fn outcome(_engine: Engine<Self>, _id: TaskId, task: LocalTask) -> Result<(), TaskError> {
        task.outcome().await
    }

    async fn subscribe_task(
        engine: &Engine<Self>,
        id: TaskId,
        after: Option<u64>,
    ) -> Result<Option<Subscription>, BackendError> {
        let cell = engine.backend().find(id);
        Ok(cell.map(|cell| engine.shared.events.subscribe_task(cell, after)))
    }

    #[inline]
    fn started(&self, _task: TaskRef<'_>, _attempt: u32) {}

    #[inline]
    fn progress(&self, _task: TaskRef<'_>, _fraction: Option<f32>, _message: Option<&str>) {}

    /// On a timer of the engine's, holding its place.
    fn retrying(&self, _: TaskRef<'_>, _: u32, _: Duration, _: &TaskError) -> Backoff {
        Backoff::Here
    }

    #[inline]
    fn settled(&self, task: TaskRef<'_>, _status: &TaskStatus) {
        // Ranked first: a reader who finds the outcome finds it retained.
        let forgotten = self.registry.finished(task.cell);
        // Free before the outcome is published: whoever sees the task
        // finished may add another with its key.
        self.unique.release(task.cell.id);
        if !forgotten.is_empty() {
            forget(forgotten);
        }
    }

    fn cancel_unfinished(&self) {
        self.registry.for_each_unfinished(|cell| cell.cancel.fire());
    }
}
