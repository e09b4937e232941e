//! Task events as Server-Sent Events (feature `sse`).
//!
//! ```
//! use axum::{Router, extract::Path, response::IntoResponse, routing::get};
//! use etiquette_axum::{Decorum, Etiquette, TaskId, sse::{self, LastEventId}};
//!
//! /// One task's events; the stream ends after its final event.
//! async fn task_events(decorum: Decorum, Path(id): Path<TaskId>, last: LastEventId) -> impl IntoResponse {
//!     sse::task_events(&decorum, id, last).await
//! }
//!
//! /// Every task's events, until the queue closes its event streams.
//! async fn all_events(decorum: Decorum, last: LastEventId) -> impl IntoResponse {
//!     sse::all_events(&decorum, last)
//! }
//!
//! let app: Router<Etiquette> = Router::new()
//!     .route("/jobs/{id}/events", get(task_events))
//!     .route("/events", get(all_events));
//! ```
//!
//! [`task_events`] says how events are framed, [`LastEventId`] how a
//! reconnecting `EventSource` resumes where it left off.
//!
//! A stream of all events stays open until
//! [`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
//! is called: call it when shutdown begins, since axum's graceful shutdown
//! waits for every open connection.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum_core::extract::FromRequestParts;
use axum_core::response::IntoResponse;
use etiquette_core::SseFrame;
use futures_util::{Stream, StreamExt as _};
use http::HeaderValue;
use http::request::Parts;

etiquette_core::define_sse!(respond -> impl IntoResponse + use<B>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = LastEventIdRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::from_header(parts.headers.get(Self::HEADER).map(HeaderValue::as_bytes))
    }
}

/// The frames as axum's SSE response.
pub(crate) fn respond(frames: impl Stream<Item = SseFrame> + Send + 'static) -> impl IntoResponse {
    let events = frames.map(|frame| {
        let event = frame.into_event(
            |name, data| Event::default().event(name).data(data),
            Event::id,
        );
        Ok::<_, Infallible>(event)
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
