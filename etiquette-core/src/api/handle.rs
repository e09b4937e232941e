//! A caller's view of one task: its status, its outcome, and a way to
//! cancel it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::Arc;

use crate::api::spawner::BoxFuture;
use crate::engine::cell::TaskCell;
use crate::engine::shared::{Outcome, Shared};
use crate::{TaskError, TaskId, TaskStatus};

/// A handle on one accepted task. Cheap to clone; dropping it does not
/// affect the task.
///
/// ```
/// use etiquette_core::{Etiquette, TaskStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(4)?;
/// let handle = etiquette.decorum().add_task(async { 6 * 7; }).await?;
/// assert!(matches!(handle.status(), TaskStatus::Queued | TaskStatus::Running { .. }));
/// handle.clone().await?; // or handle.outcome().await
/// assert!(matches!(handle.status(), TaskStatus::Succeeded { attempts: 1 }));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TaskHandle {
    cell: Arc<TaskCell>,
    shared: Arc<Shared>,
    duplicate: bool,
}

impl TaskHandle {
    pub(crate) const fn new(cell: Arc<TaskCell>, shared: Arc<Shared>) -> Self {
        Self {
            cell,
            shared,
            duplicate: false,
        }
    }

    /// The handle an add returns when it found a live task with its unique
    /// key.
    pub(crate) const fn duplicate(cell: Arc<TaskCell>, shared: Arc<Shared>) -> Self {
        Self {
            cell,
            shared,
            duplicate: true,
        }
    }

    /// Whether the add that returned this handle added nothing, because a
    /// live task held its [unique key](crate::TaskBuilder::unique_key): the
    /// handle is that task's.
    pub const fn was_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The task's id, by which [`Decorum::handle`](crate::Decorum::handle)
    /// finds it again.
    pub fn id(&self) -> TaskId {
        self.cell.id
    }

    /// Where the task stands now.
    pub fn status(&self) -> TaskStatus {
        self.cell.status()
    }

    /// Cancels the task: a queued or scheduled one, or one waiting to
    /// retry, is settled at once, frees its place in the queue at once, and never runs again;
    /// a running one is dropped at its next `.await` and settled by its
    /// worker (as panicked, should dropping it panic). Returns `false` if
    /// the task had already finished.
    pub fn cancel(&self) -> bool {
        if self.cell.is_settled() {
            return false;
        }
        self.cell.cancel.fire();
        let (settled, removed) = self.shared.backlog.settle_waiting(&self.cell);
        if let Some(phase) = settled {
            let attempts = self.cell.attempts();
            self.shared
                .record(&self.cell, phase, attempts, Outcome::Cancelled);
        }
        // Jobs a compaction took out of line, all settled: dropped here,
        // outside the line's lock.
        drop(removed);
        true
    }

    /// Waits for the task's outcome: `Ok` if it succeeded, otherwise why not
    /// (its error, a panic, a time-out or a cancellation).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future only stops the waiting.
    pub fn outcome(&self) -> impl Future<Output = Result<(), TaskError>> + Send + 'static {
        let cell = Arc::clone(&self.cell);
        async move {
            match cell.finished().await {
                TaskStatus::Succeeded { .. } => Ok(()),
                TaskStatus::Failed { error, .. } => Err(error.clone()),
                TaskStatus::TimedOut { limit, .. } => Err(TaskError::timed_out(*limit)),
                _ => Err(TaskError::cancelled()),
            }
        }
    }
}

impl IntoFuture for TaskHandle {
    type Output = Result<(), TaskError>;
    type IntoFuture = BoxFuture<Result<(), TaskError>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.outcome())
    }
}

impl fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.cell.id)
            .field("status", &self.status())
            .finish()
    }
}
