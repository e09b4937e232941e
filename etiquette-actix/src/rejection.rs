//! Queue errors as HTTP responses. What each error answers (status,
//! `Retry-After`, body) is declared once, in [`etiquette_core::Rejection`];
//! this file only speaks actix-web.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::{HttpResponse, ResponseError};
use etiquette_core::{REJECTION_CONTENT_TYPE, Rejection};

etiquette_core::define_rejected!();

impl<E: Rejection + fmt::Debug> ResponseError for Rejected<E> {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(after) = self.0.retry_after() {
            response.insert_header((RETRY_AFTER, after));
        }
        response
            .content_type(REJECTION_CONTENT_TYPE)
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
