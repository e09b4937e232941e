//! Queue errors as HTTP responses.

use std::fmt;

use etiquette_core::AddTaskError;
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::http::header::RETRY_AFTER;
use poem::{IntoResponse, Response};

/// A task the queue refused, as a response: `503 Service Unavailable` with a
/// short plain-text body, plus `Retry-After` (seconds) when the queue was
/// full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRejected(pub AddTaskError);

impl From<AddTaskError> for TaskRejected {
    fn from(error: AddTaskError) -> Self {
        Self(error)
    }
}

impl fmt::Display for TaskRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for TaskRejected {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl ResponseError for TaskRejected {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn as_response(&self) -> Response {
        let mut response = self
            .0
            .to_string()
            .with_status(self.status())
            .into_response();
        if let Some(after) = self.0.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, after.as_secs().into());
        }
        response
    }
}

/// No queue was attached to the endpoint: a `500 Internal Server Error`
/// whose body says what to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueNotRegistered;

impl fmt::Display for QueueNotRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("etiquette: no queue attached; add `.data(etiquette.clone())` to your endpoint")
    }
}

impl std::error::Error for QueueNotRegistered {}

impl ResponseError for QueueNotRegistered {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
