//! A caller's view of one task: its status, its outcome, and a way to
//! cancel it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc;

use crate::api::spawner::BoxFuture;
use crate::backend::{Backend, Engine, LocalTask, Memory};
use crate::engine::cell::TaskCell;
use crate::engine::shared::Shared;
use crate::{BackendError, RetryTaskError, TaskError, TaskId, TaskStatus};

/// A handle on one accepted task. Cheap to clone; dropping it does not
/// affect the task.
///
/// Its lookups are `async` and fallible, so that code written against it
/// runs on any backend, a database included; on the in-memory queue they
/// answer at once, and [`status_now`](Self::status_now) and
/// [`cancel_now`](Self::cancel_now) answer without `.await`.
///
/// ```
/// use etiquette_core::{Etiquette, TaskStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(4)?;
/// let handle = etiquette.decorum().add_task(async { 6 * 7; }).await?;
/// assert!(matches!(handle.status().await?, TaskStatus::Queued | TaskStatus::Running { .. }));
/// handle.clone().await?; // or handle.outcome().await
/// assert!(matches!(handle.status_now(), TaskStatus::Succeeded { attempts: 1 }));
/// # Ok(()) }
/// ```
pub struct TaskHandle<B: Backend = Memory> {
    id: TaskId,
    ticket: B::Ticket,
    engine: Engine<B>,
    duplicate: bool,
}

impl<B: Backend> Clone for TaskHandle<B> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            ticket: self.ticket.clone(),
            engine: self.engine.clone(),
            duplicate: self.duplicate,
        }
    }
}

impl TaskHandle {
    /// The handle of a task of the in-memory queue.
    pub(crate) fn local(cell: Arc<TaskCell>, shared: &Arc<Shared>, duplicate: bool) -> Self {
        Self {
            id: cell.id,
            ticket: LocalTask::new(cell),
            engine: Engine::new(Arc::clone(shared)),
            duplicate,
        }
    }

    /// Where the task stands now, without `.await` (in-memory queue).
    pub fn status_now(&self) -> TaskStatus {
        self.ticket.status()
    }

    /// [`cancel`](Self::cancel) without `.await` (in-memory queue).
    pub fn cancel_now(&self) -> bool {
        self.engine.shared.cancel(&self.ticket.cell.latest())
    }
}

impl<B: Backend> TaskHandle<B> {
    pub(crate) const fn new(
        id: TaskId,
        ticket: B::Ticket,
        engine: Engine<B>,
        duplicate: bool,
    ) -> Self {
        Self {
            id,
            ticket,
            engine,
            duplicate,
        }
    }

    /// Whether the add that returned this handle added nothing, because a
    /// live task held its [unique key](crate::TaskBuilder::unique_key): the
    /// handle is that task's.
    pub const fn was_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The task's id, by which [`Decorum::find`](crate::Decorum::find)
    /// finds it again.
    pub const fn id(&self) -> TaskId {
        self.id
    }

    /// Where the task stands now.
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn status(&self) -> Result<TaskStatus, BackendError> {
        B::status(&self.engine, self.id, &self.ticket).await
    }

    /// Cancels the task: a queued or scheduled one, or one waiting to
    /// retry, is settled at once, frees its place in the queue at once, and
    /// never runs again; a running one is dropped at its next `.await` and
    /// settled by its worker (as panicked, should dropping it panic).
    /// Returns `false` if the task had already finished.
    ///
    /// # Errors
    /// The backend could not be asked (a database that went away).
    pub async fn cancel(&self) -> Result<bool, BackendError> {
        B::cancel(&self.engine, self.id, &self.ticket).await
    }

    /// Retries the task by hand, as
    /// [`Decorum::retry_task`](crate::Decorum::retry_task) does; returns its
    /// handle (one on the task's new life, on the in-memory queue).
    ///
    /// # Errors
    /// As [`Decorum::retry_task`](crate::Decorum::retry_task).
    pub async fn retry(&self) -> Result<Self, RetryTaskError> {
        B::retry(&self.engine, self.id).await
    }

    /// Waits for the task's outcome: `Ok` if it succeeded, otherwise why not
    /// (its error, a panic, a time-out or a cancellation).
    ///
    /// A task [retried by hand](crate::Decorum::retry_task) after it ended
    /// is the same task, in a new life: this future, awaited after the
    /// retry, resolves with the new life's outcome, on every backend; one
    /// that had resolved before keeps the outcome it gave. (On the in-memory
    /// queue, [`status_now`](Self::status_now) and
    /// [`cancel_now`](Self::cancel_now) follow the new life too; a durable
    /// backend looks the task up by id, which finds its latest life.)
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only stops the waiting.
    pub fn outcome(&self) -> impl Future<Output = Result<(), TaskError>> + Send + 'static {
        B::outcome(self.engine.clone(), self.id, self.ticket.clone())
    }
}

impl<B: Backend> IntoFuture for TaskHandle<B> {
    type Output = Result<(), TaskError>;
    type IntoFuture = BoxFuture<Result<(), TaskError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.outcome())
    }
}

impl<B: Backend> fmt::Debug for TaskHandle<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id)
            .field("duplicate", &self.duplicate)
            .finish_non_exhaustive()
    }
}
