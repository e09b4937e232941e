//! What the web adapters answer for the queue's errors, declared once.
//!
//! Each error a handler may meet says here which status it is answered
//! with, and whether a client may retry; its `Display` is the plain-text
//! body. Each adapter defines one generic `Rejected<E>` (with
//! [`define_rejected!`](crate::define_rejected)) and turns any
//! [`Rejection`] into its framework's response in one impl, so that the
//! three frameworks answer the same request the same way.

use std::error::Error;
use std::fmt;

use crate::{AddTaskError, BackendError, InvalidLastEventId, RetryTaskError, TaskId};

/// An error a web adapter answers with a plain-text response: this status,
/// a `Retry-After` header when given, and the error's `Display` as the body
/// ([`REJECTION_CONTENT_TYPE`]).
pub trait Rejection: Error + Send + Sync + 'static {
    /// The HTTP status code.
    fn status(&self) -> u16;

    /// Seconds a client should wait before trying again, when trying again
    /// may succeed.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

/// The content type of every rejection's body.
pub const REJECTION_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// `503 Service Unavailable`, with `Retry-After` when trying again may
/// succeed (the queue was full, its backend unreachable); `500 Internal
/// Server Error` for a task its backend can never store.
impl Rejection for AddTaskError {
    fn status(&self) -> u16 {
        match self {
            Self::Unstorable(_) => 500,
            _ => 503,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        AddTaskError::retry_after(self).map(|after| after.as_secs())
    }
}

/// `503 Service Unavailable` with `Retry-After`: the queue's backend could
/// not answer a lookup now (a database that went away).
impl Rejection for BackendError {
    fn status(&self) -> u16 {
        503
    }

    fn retry_after(&self) -> Option<u64> {
        Some(1)
    }
}

/// `404 Not Found` for an unknown task; `409 Conflict` for a task that
/// cannot be retried now (not finished, succeeded, a closure task, its
/// unique key held by a live task); `503 Service Unavailable` when the
/// queue is full (with `Retry-After`), released, or its backend could not
/// be asked (with `Retry-After`).
impl Rejection for RetryTaskError {
    fn status(&self) -> u16 {
        match self {
            Self::Unknown(_) => 404,
            Self::Full | Self::Released | Self::Backend(_) => 503,
            _ => 409,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        self.is_transient().then_some(1)
    }
}

/// `400 Bad Request`: the client sent a header no event stream can resume.
impl Rejection for InvalidLastEventId {
    fn status(&self) -> u16 {
        400
    }
}

/// No task with that id is known: never issued, or finished longer ago than
/// the queue's [`status_retention`](crate::Builder::status_retention).
/// Answered `404 Not Found`, with the body `no task <id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownTask(pub TaskId);

impl fmt::Display for UnknownTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no task {}", self.0)
    }
}

impl Error for UnknownTask {}

impl Rejection for UnknownTask {
    fn status(&self) -> u16 {
        404
    }
}

/// Why a task's status or events could not be served: no such task
/// (`404 Not Found`), or the queue's backend could not be asked (`503
/// Service Unavailable` with `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskLookupError {
    /// No task with that id is known.
    Unknown(UnknownTask),
    /// The backend could not be asked.
    Backend(BackendError),
}

impl TaskLookupError {
    /// The answer to a lookup of task `id`: its value, or why not.
    ///
    /// # Errors
    /// As the variants say.
    pub fn check<T>(id: TaskId, found: Result<Option<T>, BackendError>) -> Result<T, Self> {
        match found {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(Self::Unknown(UnknownTask(id))),
            Err(error) => Err(Self::Backend(error)),
        }
    }
}

impl fmt::Display for TaskLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(unknown) => unknown.fmt(f),
            Self::Backend(error) => error.fmt(f),
        }
    }
}

impl Error for TaskLookupError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Unknown(_) => None,
            Self::Backend(error) => Some(error),
        }
    }
}

impl Rejection for TaskLookupError {
    fn status(&self) -> u16 {
        match self {
            Self::Unknown(unknown) => unknown.status(),
            Self::Backend(error) => error.status(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Unknown(unknown) => unknown.retry_after(),
            Self::Backend(error) => error.retry_after(),
        }
    }
}

/// Defines, in a web adapter, `pub struct Rejected<E>(pub E)`: a queue
/// error as that framework's response, with `From<E>`, `Display` and
/// `Error`; and its alias `TaskRejected`, for [`AddTaskError`]. The adapter
/// adds its framework's response impl for `Rejected<E: Rejection>`. (Each
/// adapter needs a type of its own: a framework's trait cannot be
/// implemented for a type of this crate.)
#[doc(hidden)]
#[macro_export]
macro_rules! define_rejected {
    () => {
        /// A queue error as a response: the status its
        /// [`Rejection`](etiquette_core::Rejection) declares, `Retry-After`
        /// when it gives one, and its message as a `text/plain` body.
        /// Converts from the error with `?`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct Rejected<E>(pub E);

        impl<E> From<E> for Rejected<E> {
            fn from(error: E) -> Self {
                Self(error)
            }
        }

        impl<E: ::std::fmt::Display> ::std::fmt::Display for Rejected<E> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl<E: ::std::error::Error + 'static> ::std::error::Error for Rejected<E> {
            fn source(&self) -> Option<&(dyn ::std::error::Error + 'static)> {
                Some(&self.0)
            }
        }

        /// A task the queue refused, as a response: `503 Service Unavailable`
        /// with a short plain-text body, plus `Retry-After` (seconds) when the
        /// queue was full.
        pub type TaskRejected = Rejected<$crate::AddTaskError>;
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_declares_its_answer() {
        assert_eq!(
            (
                AddTaskError::Full.status(),
                Rejection::retry_after(&AddTaskError::Full)
            ),
            (503, Some(1))
        );
        assert_eq!(Rejection::retry_after(&AddTaskError::Released), None);
        let invalid = crate::parse_last_event_id(b"abc").unwrap_err();
        assert_eq!((invalid.status(), invalid.retry_after()), (400, None));
        let id = TaskId::from(7);
        let retry = |error: RetryTaskError| (error.status(), Rejection::retry_after(&error));
        assert_eq!(retry(RetryTaskError::Unknown(id)), (404, None));
        assert_eq!(retry(RetryTaskError::NotFinished(id)), (409, None));
        assert_eq!(retry(RetryTaskError::Succeeded(id)), (409, None));
        assert_eq!(retry(RetryTaskError::NotRetriable(id)), (409, None));
        let held = RetryTaskError::UniqueKeyHeld {
            task: id,
            holder: TaskId::from(9),
        };
        assert!(held.to_string().contains("live task 9"), "{held}");
        assert_eq!(retry(held), (409, None));
        assert_eq!(retry(RetryTaskError::Full), (503, Some(1)));
        assert_eq!(retry(RetryTaskError::Released), (503, None));
        let down = RetryTaskError::Backend(BackendError::msg("down"));
        assert_eq!(retry(down), (503, Some(1)));
        let unknown = UnknownTask(TaskId::from(7));
        assert_eq!(
            (unknown.status(), unknown.to_string()),
            (404, "no task 7".to_owned())
        );
    }
}
