//! Queue errors as HTTP responses. What each error answers (status,
//! `Retry-After`, body) is declared once, in [`etiquette_core::Rejection`];
//! this file only speaks axum.

use axum_core::response::{IntoResponse, Response};
use etiquette_core::{REJECTION_CONTENT_TYPE, Rejection};
use http::{HeaderValue, StatusCode, header};

etiquette_core::define_rejected!();

impl<E: Rejection> IntoResponse for Rejected<E> {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = [(header::CONTENT_TYPE, REJECTION_CONTENT_TYPE)];
        let mut response = (status, content_type, self.0.to_string()).into_response();
        if let Some(after) = self.0.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
        }
        response
    }
}
