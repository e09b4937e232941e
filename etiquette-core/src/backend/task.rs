//! A backend's view of a task in this process's engine: borrowed while the
//! engine tells of a transition ([`TaskRef`]), or kept ([`LocalTask`]).

use std::fmt;
use std::sync::Arc;

use crate::engine::cell::TaskCell;
use crate::{TaskError, TaskId, TaskStatus};

/// A task the engine holds, lent to a [`Backend`](super::Backend) while it
/// tells of a transition. Copying it costs nothing; keep a [`LocalTask`]
/// ([`to_local`](Self::to_local)) to reach the task later.
#[derive(Clone, Copy)]
pub struct TaskRef<'a> {
    pub(crate) cell: &'a Arc<TaskCell>,
}

impl<'a> TaskRef<'a> {
    pub(crate) const fn new(cell: &'a Arc<TaskCell>) -> Self {
        Self { cell }
    }

    /// The task's id.
    pub fn id(self) -> TaskId {
        self.cell.id
    }

    /// Attempts started so far.
    pub fn attempts(self) -> u32 {
        self.cell.attempts()
    }

    /// Whether this is the task `local` holds (not another task of the
    /// same id, such as an older attempt of a job claimed again).
    pub fn is(self, local: &LocalTask) -> bool {
        Arc::ptr_eq(self.cell, &local.cell)
    }

    /// A handle on the task to keep.
    pub fn to_local(self) -> LocalTask {
        LocalTask {
            cell: Arc::clone(self.cell),
        }
    }
}

impl fmt::Debug for TaskRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskRef").field("id", &self.id()).finish()
    }
}

/// A task in this process's engine, as the engine sees it: its status
/// here, its outcome here, and its cancel signal. The in-memory queue's
/// task handles hold one; a durable backend keeps one per job it claimed,
/// to cancel the attempt when another process asks or its lease is lost.
#[derive(Clone)]
pub struct LocalTask {
    pub(crate) cell: Arc<TaskCell>,
}

impl LocalTask {
    pub(crate) const fn new(cell: Arc<TaskCell>) -> Self {
        Self { cell }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.cell.id
    }

    /// Where the task stands in this process. A task handed back to the
    /// backend (see [`Backoff::Stored`](super::Backoff::Stored)) stays
    /// `Retrying`, as it was when it left. A task of the in-memory queue
    /// [retried by hand](crate::Decorum::retry_task) after this was taken
    /// is followed into its latest life.
    pub fn status(&self) -> TaskStatus {
        self.cell.latest().status()
    }

    /// Whether the task settled here.
    pub fn is_settled(&self) -> bool {
        self.cell.is_settled()
    }

    /// Cancels the attempt running here: it is dropped at its next `.await`
    /// and settled as cancelled by its worker. A task still in the line is
    /// cancelled with [`Engine::cancel`](super::Engine::cancel) instead:
    /// this signal alone would not keep it from starting.
    pub fn cancel_attempt(&self) {
        self.cell.cancel.fire();
    }

    /// Resolves with the task's outcome once it settled here. A task
    /// handed back to the backend has no outcome here: ask the backend.
    /// A task of the in-memory queue [retried by hand](crate::Decorum::retry_task)
    /// before this is awaited is followed into its latest life: the outcome
    /// is that of the life that has no next one when it ends.
    pub async fn outcome(&self) -> Result<(), TaskError> {
        let mut cell = Arc::clone(&self.cell);
        loop {
            cell = cell.latest();
            let outcome = cell.finished().await.to_result();
            if cell.next_life().is_none() {
                return outcome;
            }
        }
    }
}

impl fmt::Debug for LocalTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTask")
            .field("id", &self.id())
            .field("status", &self.status())
            .finish()
    }
}
