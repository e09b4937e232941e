//! A job's row read as the status every backend reports, and a finished
//! status as a handle's outcome.

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
        // Failed with no error: only a time-out is written so (see
        // `End::TimedOut`); the job's own errors, whatever they say, are
        // text.
        "failed" => match (&stored.error, stored.timeout) {
            (None, Some(limit)) => TaskStatus::TimedOut { attempts, limit },
            _ => TaskStatus::Failed {
                attempts,
                error: error(),
            },
        },
        _ => TaskStatus::Cancelled,
    }
}

/// A finished status as a handle's outcome: the error a handle on the
/// in-memory queue would get (a time-out and a cancel tell themselves
/// apart, `is_timeout`, `is_cancelled`).
pub(crate) fn outcome(status: &TaskStatus) -> Result<(), TaskError> {
    match status {
        TaskStatus::Succeeded { .. } => Ok(()),
        TaskStatus::Failed { error, .. } => Err(error.clone()),
        TaskStatus::TimedOut { limit, .. } => Err(TaskError::timed_out(*limit)),
        TaskStatus::Cancelled => Err(TaskError::cancelled()),
        // Not finished: not an outcome (never asked so).
        _ => Err(TaskError::from_message(status.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn failed(error: Option<&str>, timeout: Option<Duration>) -> TaskStatus {
        status(&Stored {
            state: "failed".to_owned(),
            attempt: 2,
            run_at: SystemTime::UNIX_EPOCH,
            error: error.map(str::to_owned),
            wait: Duration::ZERO,
            timeout,
            later: false,
            name: "tally".to_owned(),
        })
    }

    #[test]
    fn only_a_failure_with_no_error_under_a_time_limit_reads_timed_out() {
        let limit = Duration::from_secs(3);
        let timed_out = failed(None, Some(limit));
        assert!(
            matches!(timed_out, TaskStatus::TimedOut { attempts: 2, limit: read } if read == limit),
            "{timed_out:?}"
        );
        let own = "timed out after talking to Stripe";
        let TaskStatus::Failed { error, attempts: 2 } = failed(Some(own), Some(limit)) else {
            panic!("a job's own error read as a time-out");
        };
        assert_eq!(error.to_string(), own);
        assert!(matches!(failed(None, None), TaskStatus::Failed { .. }));
    }
}
