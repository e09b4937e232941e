//! Queue errors as HTTP responses.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use etiquette_core::AddTaskError;

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
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(after) = self.0.retry_after() {
            response.insert_header((RETRY_AFTER, after.as_secs()));
        }
        response
            .content_type("text/plain; charset=utf-8")
            .body(self.0.to_string())
    }
}

/// No queue was registered with the app: a `500 Internal Server Error`
/// whose body says what to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueNotRegistered;

impl fmt::Display for QueueNotRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "etiquette: no queue registered; add \
             `.app_data(web::ThinData(etiquette.clone()))` to your App",
        )
    }
}

impl std::error::Error for QueueNotRegistered {}

impl ResponseError for QueueNotRegistered {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}
