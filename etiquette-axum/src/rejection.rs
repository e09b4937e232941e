//! Queue errors as HTTP responses.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use etiquette_core::AddTaskError;
use http::{HeaderValue, StatusCode, header};

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

impl IntoResponse for TaskRejected {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, self.0.to_string()).into_response();
        if let Some(after) = self.0.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs()));
        }
        response
    }
}
