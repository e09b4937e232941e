//! Queue errors as HTTP responses. What each error answers (status,
//! `Retry-After`, body) is declared once, in [`etiquette_core::Rejection`];
//! this file only speaks poem.

use std::fmt;

use etiquette_core::{REJECTION_CONTENT_TYPE, Rejection};
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::http::header::RETRY_AFTER;
use poem::{IntoResponse, Response};

etiquette_core::define_rejected!();

impl<E: Rejection + fmt::Debug> ResponseError for Rejected<E> {
    fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn as_response(&self) -> Response {
        let mut response = self
            .0
            .to_string()
            .with_status(self.status())
            .with_content_type(REJECTION_CONTENT_TYPE)
            .into_response();
        if let Some(after) = self.0.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, after.into());
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
