//! A job's row read as the status every backend reports, and a finished
//! status as a handle's outcome.

use std::time::Duration;

use etiquette_core::{TaskError, TaskStatus};

use crate::jobs::Stored;

/// The status of a job whose row reads `stored`.
pub(crate) fn status(stored: &Stored) -> TaskStatus {
    let attempts = u32::try_from(stored.attempt).unwrap_or(0);
    let error = || TaskError::from_message(stored.error.clone().unwrap_or_default());
    match stored.state.as_str() {
        "available" if stored.later => TaskStatus::Scheduled {
            run_at: stored.run_at,
        },
        "available" => TaskStatus::Queued,
        "running" => TaskStatus::Running { attempt: attempts },
        "retrying" => TaskStatus::Retrying {
            attempt: attempts,
            backoff: stored.wait,
            error: error(),
        },
        "succeeded" => TaskStatus::Succeeded { attempts },
        "failed" => match (timed_out(stored.error.as_deref()), stored.timeout) {
            (true, Some(limit)) => TaskStatus::TimedOut { attempts, limit },
            _ => TaskStatus::Failed {
                attempts,
                error: error(),
            },
        },
        _ => TaskStatus::Cancelled,
    }
}

/// The error stored for an attempt that ran past its time limit.
pub(crate) fn timed_out_error(limit: Duration) -> String {
    format!("{TIMED_OUT} {limit:?}")
}

const TIMED_OUT: &str = "timed out after";

fn timed_out(error: Option<&str>) -> bool {
    error.is_some_and(|error| error.starts_with(TIMED_OUT))
}

/// A finished status as a handle's outcome.
pub(crate) fn outcome(status: &TaskStatus) -> Result<(), TaskError> {
    match status {
        TaskStatus::Succeeded { .. } => Ok(()),
        TaskStatus::Failed { error, .. } => Err(error.clone()),
        _ => Err(TaskError::from_message(status.to_string())),
    }
}
