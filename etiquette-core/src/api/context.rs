//! What a running task knows about itself, and how it reports progress.

use std::fmt;
use std::sync::Arc;

use crate::TaskId;
use crate::engine::cell::TaskCell;
use crate::engine::shared::ReportProgress;

/// Handed to each attempt of a task added with
/// [`Decorum::task_with_context`](crate::Decorum::task_with_context): the
/// task's id and attempt number, and a way to publish progress events.
///
/// ```
/// use etiquette_core::{Etiquette, EventKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::builder().event_buffer(64).build()?;
/// let decorum = etiquette.decorum();
/// let task = decorum
///     .task_with_context(|context| async move {
///         for step in 1..=4 {
///             context.report(step as f32 / 4.0, format!("step {step} of 4"));
///         }
///     })
///     .add()
///     .await?;
/// task.outcome().await?;
/// let mut events = decorum.subscribe_task(task.id(), None).await?.unwrap();
/// let mut progress = Vec::new();
/// while let Some(Ok(event)) = events.next().await {
///     if let EventKind::Progress { fraction, .. } = event.kind {
///         progress.push(fraction.unwrap());
///     }
/// }
/// assert_eq!(progress, [0.25, 0.5, 0.75, 1.0]);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TaskContext {
    cell: Arc<TaskCell>,
    attempt: u32,
    report: Arc<dyn ReportProgress>,
}

impl TaskContext {
    pub(crate) fn new(cell: Arc<TaskCell>, attempt: u32, report: Arc<dyn ReportProgress>) -> Self {
        Self {
            cell,
            attempt,
            report,
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.cell.id
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Publishes how far along the task is, from 0.0 to 1.0 (clamped).
    ///
    /// Reports made after the task settled (from a clone kept by a helper
    /// past a time-out, say) are dropped: nothing follows a final event.
    pub fn progress(&self, fraction: f32) {
        self.publish(Some(fraction), None);
    }

    /// Publishes a short message about the task's progress.
    pub fn message(&self, message: impl Into<String>) {
        self.publish(None, Some(message.into()));
    }

    /// Publishes both a fraction and a message.
    pub fn report(&self, fraction: f32, message: impl Into<String>) {
        self.publish(Some(fraction), Some(message.into()));
    }

    fn publish(&self, fraction: Option<f32>, message: Option<String>) {
        let fraction = fraction.map(|fraction| {
            if fraction.is_nan() {
                0.0
            } else {
                fraction.clamp(0.0, 1.0)
            }
        });
        self.report.progress(&self.cell, fraction, message);
    }
}

impl fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.cell.id)
            .field("attempt", &self.attempt)
            .finish()
    }
}
