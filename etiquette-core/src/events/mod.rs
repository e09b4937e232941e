//! Task lifecycle events: published by the queue, buffered for resumption,
//! broadcast to any number of subscribers that can never slow the queue.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::{TaskId, TaskStatus};

mod hub;
mod subscription;

pub(crate) use hub::Events;
pub use subscription::Subscription;

/// One step in a task's life, numbered queue-wide.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskEvent {
    /// Increases by one with every event the queue publishes: an SSE
    /// `id`, to resume from with `Last-Event-ID`.
    pub id: u64,
    /// The task it is about.
    pub task: TaskId,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// Accepted into the queue, or back in line after a
    /// [retry by hand](crate::Decorum::retry_task).
    Queued {
        /// The typed job's [`Job::NAME`](crate::Job::NAME); `None` for a
        /// closure task, and for a job of a kind this process does not
        /// run, heard from another process (a durable backend's).
        job: Option<&'static str>,
    },
    /// Accepted to run at `run_at`, at the earliest (instead of
    /// `Queued`); `Started` follows once it is due and a slot is free.
    Scheduled {
        /// When it may start.
        run_at: SystemTime,
        /// The typed job's [`Job::NAME`](crate::Job::NAME); `None` for a
        /// closure task, and for a job of a kind this process does not
        /// run, heard from another process (a durable backend's).
        job: Option<&'static str>,
    },
    /// An attempt started (from 1).
    Started {
        /// The attempt.
        attempt: u32,
        /// The typed job's [`Job::NAME`](crate::Job::NAME); `None` for a
        /// closure task, and for a job of a kind this process does not
        /// run, heard from another process (a durable backend's).
        job: Option<&'static str>,
    },
    /// The task reported progress through its [`TaskContext`](crate::TaskContext).
    Progress {
        /// How far along, from 0.0 to 1.0, if the task said.
        fraction: Option<f32>,
        /// A short message, if the task gave one.
        message: Option<String>,
    },
    /// An attempt failed; the next starts after `backoff`.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next attempt.
        backoff: Duration,
        /// Why it failed.
        error: String,
    },
    /// Finished successfully.
    Succeeded {
        /// Attempts made.
        attempts: u32,
    },
    /// Finished with an error or a panic.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// The last attempt ran past its time limit.
    TimedOut {
        /// Attempts made.
        attempts: u32,
    },
    /// Cancelled, or dropped with its executor.
    Cancelled,
}

impl EventKind {
    /// A short lowercase name (`queued`, `scheduled`, `started`, `progress`, `retrying`,
    /// `succeeded`, `failed`, `timed_out`, `cancelled`), for the SSE `event`
    /// field.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Queued { .. } => "queued",
            Self::Scheduled { .. } => "scheduled",
            Self::Started { .. } => "started",
            Self::Progress { .. } => "progress",
            Self::Retrying { .. } => "retrying",
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The typed job's [`Job::NAME`](crate::Job::NAME), told where the task
    /// is first seen: by `Queued`, `Scheduled` and `Started`; `None` for a
    /// closure task and for every other kind of event.
    pub const fn job(&self) -> Option<&'static str> {
        match self {
            Self::Queued { job } | Self::Scheduled { job, .. } | Self::Started { job, .. } => *job,
            _ => None,
        }
    }

    /// The final event matching a finished status.
    pub(crate) fn from_final(status: &TaskStatus) -> Self {
        match status {
            TaskStatus::Succeeded { attempts } => Self::Succeeded {
                attempts: *attempts,
            },
            TaskStatus::Failed { attempts, error } => Self::Failed {
                attempts: *attempts,
                error: error.to_string(),
            },
            TaskStatus::TimedOut { attempts, .. } => Self::TimedOut {
                attempts: *attempts,
            },
            _ => Self::Cancelled,
        }
    }

    /// Whether this is the task's last event.
    pub const fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded { .. } | Self::Failed { .. } | Self::TimedOut { .. } | Self::Cancelled
        )
    }
}

/// A subscriber fell behind and `missed` events were dropped for it; the
/// stream goes on with the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    /// How many events it missed.
    pub missed: u64,
}

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the subscriber fell behind and missed {} events",
            self.missed
        )
    }
}

impl std::error::Error for Lagged {}
