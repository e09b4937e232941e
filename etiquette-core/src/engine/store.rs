//! The line between the engine and where a queue keeps its tasks.
//!
//! The engine (the line of claimed jobs, the workers, each attempt with its
//! time limit, cancel and retry decision, the ledger, release) is written
//! once against [`Store`]; the in-memory queue ([`Memory`](crate::memory::Memory))
//! is its first implementation, and the default everywhere, so that the
//! in-memory fast path is monomorphised, with no dynamic dispatch. A store
//! is told each transition of a task the engine runs, and decides how the
//! task waits for a retry: the in-memory store on a timer of its own, a
//! durable one in its table, where any process may claim it when it is due.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::attempt::Accepted;
use crate::engine::cell::TaskCell;
use crate::engine::shared::Shared;
use crate::{TaskError, TaskStatus};

/// Where a task's progress reports go: its queue's store, whichever it is,
/// so that a [`TaskContext`](crate::TaskContext) names no store type.
pub(crate) trait ReportProgress: Send + Sync {
    fn progress(&self, cell: &TaskCell, fraction: Option<f32>, message: Option<String>);
}

impl<S: Store> ReportProgress for Shared<S> {
    fn progress(&self, cell: &TaskCell, fraction: Option<f32>, message: Option<String>) {
        self.store.progress(cell, fraction, message);
    }
}

pub(crate) trait Store: Send + Sync + Sized + 'static {
    /// Attempt `attempt` of the task started.
    fn started(&self, cell: &TaskCell, attempt: u32);

    /// The running task reported progress; dropped once it settled.
    fn progress(&self, cell: &TaskCell, fraction: Option<f32>, message: Option<String>);

    /// Attempt `attempt` failed with `error` and the task retries after
    /// `delay`: the store takes the job, whose task is still running, and
    /// holds it until then, accounting the retry through
    /// [`Shared::record_retry`] once the task is waiting.
    fn retry(
        shared: &Arc<Shared<Self>>,
        job: Accepted,
        attempt: u32,
        delay: Duration,
        error: TaskError,
    );

    /// The task settled with `status`, which the store now answers for it.
    /// Returns the state of tasks it no longer keeps, for the engine to
    /// drop outside its locks (a task's outcome may hold a user's error,
    /// whose destructor is user code).
    fn settled(&self, cell: &TaskCell, status: TaskStatus) -> Vec<Arc<TaskCell>>;

    /// A release deadline passed: every unfinished task's attempt is to be
    /// cancelled.
    fn cancel_unfinished(&self);

    /// Every task settled, or the queue is gone: end the event streams.
    fn close_events(&self);
}
