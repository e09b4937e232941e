//! The seam between the engine and where a queue keeps its tasks: what a
//! backend implements so that [`Etiquette`](crate::Etiquette),
//! [`Decorum`](crate::Decorum), [`TaskHandle`], events
//! and release work unchanged on it.
//!
//! The engine (the line of jobs waiting for a worker, the workers, each
//! attempt with its time limit, cancel and retry decision, the ledger that
//! accounts for every outcome and publishes its event, release) is written
//! once, generic over a [`Backend`]. [`Memory`] is the first backend and the
//! default everywhere, so the in-memory path is monomorphised, without
//! dynamic dispatch; a durable backend (`etiquette-postgres`) is a crate
//! implementing this trait.
//!
//! A backend answers two sides:
//!
//! * **Intake and lookups**, asked by handlers, maybe across a network, so
//!   asynchronous and fallible: [`add`](Backend::add),
//!   [`find`](Backend::find), [`status`](Backend::status),
//!   [`cancel`](Backend::cancel), [`retry`](Backend::retry),
//!   [`outcome`](Backend::outcome),
//!   [`subscribe_task`](Backend::subscribe_task).
//! * **Transitions**, told by the engine as they happen to a task running in
//!   this process, on its hot path, so synchronous and infallible (a durable
//!   backend queues them for a writer of its own):
//!   [`started`](Backend::started), [`progress`](Backend::progress),
//!   [`retrying`](Backend::retrying), [`settled`](Backend::settled).
//!
//! Where the tasks come from is the backend's business: the in-memory queue
//! puts what handlers add straight into the engine's line; a durable one
//! stores them, and [`offer`s](Engine::offer) the jobs it claims.

mod engine;
pub(crate) mod options;
mod task;

use std::future::Future;
use std::time::Duration;

pub use crate::engine::work::MemoryWork;
pub use crate::memory::Memory;
pub use engine::{Engine, Offer, WeakEngine};
pub use options::{JobOptions, Start};
pub use task::{LocalTask, TaskRef};

use crate::{
    AddTaskError, BackendError, BuildError, Job, RetryTaskError, StoredJobs, Subscription,
    TaskError, TaskHandle, TaskId, TaskStatus,
};

/// Where a task that failed an attempt waits for its next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backoff {
    /// In this process: the engine keeps the job and puts it back in line
    /// when the delay has passed. The task holds its queue place meanwhile.
    Here,
    /// In the backend, which stored the retry (its row waits for its time,
    /// for any process to claim): the task leaves this process, counted as
    /// [`handed_back`](crate::Stats::handed_back).
    Stored,
}

/// Where a queue keeps its tasks; see the [module docs](self).
///
/// Methods taking an [`Engine`] are called with the engine of the queue the
/// backend serves, whose [`backend`](Engine::backend) is `self`.
pub trait Backend: Send + Sync + Sized + 'static {
    /// What a [`TaskHandle`] keeps of its task besides its id: the task
    /// itself for the in-memory queue, nothing for a durable one, which
    /// looks it up by id.
    type Ticket: Clone + Send + Sync + 'static;

    /// A typed job as this backend takes it in: the job itself for the
    /// in-memory queue, its name and serialised arguments for a durable one
    /// (made where the job is added, so that a job that cannot be stored is
    /// refused there).
    type Work: Send + 'static;

    /// Turns a typed job into [`Work`](Self::Work).
    fn work<J: Job>(job: J) -> Self::Work;

    /// Called once, when the queue is built, before any task is added:
    /// start whatever feeds the engine (a durable backend's claimer).
    ///
    /// # Errors
    /// The queue is not built.
    fn start(engine: &Engine<Self>) -> Result<(), BuildError> {
        let _ = engine;
        Ok(())
    }

    /// Release began: intake is closed; stop taking in more work (a durable
    /// backend stops claiming). Told once, however often release is called.
    fn closing(&self) {}

    /// Every task this process held has settled or been handed back, and a
    /// release is about to report: make their outcomes durable first (a
    /// durable backend waits for its writer to write what it was told).
    fn drained(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Adds a typed job (`name` is its [`Job::NAME`]; `None` only for the
    /// in-memory queue's closure tasks) with `options`.
    fn add(
        engine: &Engine<Self>,
        name: Option<&'static str>,
        work: Self::Work,
        options: JobOptions,
    ) -> impl Future<Output = Result<TaskHandle<Self>, AddTaskError>> + Send;

    /// The handle of task `id`, if the backend knows it.
    fn find(
        engine: &Engine<Self>,
        id: TaskId,
    ) -> impl Future<Output = Result<Option<TaskHandle<Self>>, BackendError>> + Send;

    /// Where task `id` stands now.
    fn status(
        engine: &Engine<Self>,
        id: TaskId,
        ticket: &Self::Ticket,
    ) -> impl Future<Output = Result<TaskStatus, BackendError>> + Send;

    /// Cancels task `id` (see [`TaskHandle::cancel`]); `false` if it had
    /// finished already.
    fn cancel(
        engine: &Engine<Self>,
        id: TaskId,
        ticket: &Self::Ticket,
    ) -> impl Future<Output = Result<bool, BackendError>> + Send;

    /// Retries by hand task `id`, which ended failed, timed out or
    /// cancelled (see [`Decorum::retry_task`](crate::Decorum::retry_task)):
    /// back to waiting, due now, under the same id, its attempts counted
    /// on, with one more attempt if it had used them all up; its handle.
    /// A backend that cannot keep a job's work answers
    /// [`RetryTaskError::NotRetriable`], as this default does.
    ///
    /// # Errors
    /// [`RetryTaskError`], having changed nothing.
    fn retry(
        engine: &Engine<Self>,
        id: TaskId,
    ) -> impl Future<Output = Result<TaskHandle<Self>, RetryTaskError>> + Send {
        let _ = engine;
        std::future::ready(Err(RetryTaskError::NotRetriable(id)))
    }

    /// The jobs the backend stores for this queue, by state, across every
    /// process (see [`StoredJobs`]); `None` (the default) where this
    /// process's [`Stats`](crate::Stats) are the whole truth, as on the
    /// in-memory queue.
    ///
    /// # Errors
    /// The backend could not be asked.
    fn stored_jobs(
        engine: &Engine<Self>,
    ) -> impl Future<Output = Result<Option<StoredJobs>, BackendError>> + Send {
        let _ = engine;
        std::future::ready(Ok(None))
    }

    /// Resolves with task `id`'s outcome once it has one.
    fn outcome(
        engine: Engine<Self>,
        id: TaskId,
        ticket: Self::Ticket,
    ) -> impl Future<Output = Result<(), TaskError>> + Send + 'static;

    /// Subscribes to task `id`'s events (see
    /// [`Decorum::subscribe_task`](crate::Decorum::subscribe_task)).
    fn subscribe_task(
        engine: &Engine<Self>,
        id: TaskId,
        after: Option<u64>,
    ) -> impl Future<Output = Result<Option<Subscription>, BackendError>> + Send;

    /// Attempt `attempt` of `task` started here; its event is published.
    fn started(&self, task: TaskRef<'_>, attempt: u32);

    /// The running `task` reported progress; its event is published.
    fn progress(&self, task: TaskRef<'_>, fraction: Option<f32>, message: Option<&str>);

    /// Attempt `attempt` of `task` failed with `error`, and the task is to
    /// try again after `delay`: where does it wait?
    fn retrying(
        &self,
        task: TaskRef<'_>,
        attempt: u32,
        delay: Duration,
        error: &TaskError,
    ) -> Backoff;

    /// `task` settled with `status` here (its final event is published,
    /// its handles see the status right after): the backend answers for
    /// it from now on.
    fn settled(&self, task: TaskRef<'_>, status: &TaskStatus);

    /// A release deadline passed: every attempt still running here is to
    /// be cancelled. Called before the engine cancels the jobs still in its
    /// line, so that a durable backend can tell, at their `settled`, that
    /// they are to be handed back rather than cancelled.
    fn cancel_unfinished(&self);
}
