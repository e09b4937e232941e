//! What a task is: its id, and the outputs the queue knows how to judge.

use std::error::Error;
use std::fmt;

/// The error type a failed task is reduced to once the queue has judged it.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Identifies one accepted task within its queue.
///
/// Ids are handed out in acceptance order, starting at 1, and never reused by
/// the same queue. They appear as `task_id` in every `tracing` span and event
/// the queue emits about the task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(u64);

impl TaskId {
    pub(crate) const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The id as a plain number, for logs, headers or URLs.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for TaskId {
    /// For ids read back from a URL or a message; an id the queue never
    /// issued simply finds no task.
    fn from(raw: u64) -> Self {
        Self(raw)
    }
}

impl std::str::FromStr for TaskId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(Self)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// What a task's future may return.
///
/// `()` always counts as success. `Result<(), E>` counts as failed when it is
/// `Err`; the error is logged with its `Display` and its `source()` chain and
/// the task is counted in [`Stats::failed`](crate::Stats::failed).
pub trait TaskOutput: Send + 'static {
    /// Reduces the output to success or a boxed error.
    ///
    /// # Errors
    /// The task's own error, when it failed.
    fn into_result(self) -> Result<(), BoxError>;
}

impl TaskOutput for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E> TaskOutput for Result<(), E>
where
    E: Into<BoxError> + Send + 'static,
{
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// Renders an error and every `source()` below it on one line, separated by
/// `: `, as the queue logs a task's error and a durable backend stores it.
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("sending the email failed")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_chain_lists_every_cause() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(
            error_chain(&error),
            "sending the email failed: connection refused"
        );
    }

    #[test]
    fn outputs_are_judged() {
        assert!(().into_result().is_ok());
        assert!(Ok::<(), std::io::Error>(()).into_result().is_ok());
        let failed: Result<(), &str> = Err("nope");
        assert_eq!(failed.into_result().unwrap_err().to_string(), "nope");
    }
}
