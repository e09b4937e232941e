//! Task events as Server-Sent Events (feature `sse`).
//!
//! ```
//! use axum::{Router, extract::Path, response::IntoResponse, routing::get};
//! use etiquette_axum::{Decorum, Etiquette, TaskId, sse::{self, LastEventId}};
//!
//! /// One task's events; the stream ends after its final event.
//! async fn task_events(decorum: Decorum, Path(id): Path<TaskId>, last: LastEventId) -> impl IntoResponse {
//!     sse::task_events(&decorum, id, last)
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
//! Each event has the event id as `id:`, its kind as `event:` (`queued`,
//! `started`, `progress`, …) and a JSON object as `data:`; a client that
//! fell behind gets a `lagged` event. A reconnecting `EventSource` sends
//! `Last-Event-ID` and resumes where it left off, as far as the queue's
//! [`event_buffer`](etiquette_core::Builder::event_buffer) reaches.
//!
//! The header is read by [`parse_last_event_id`]: an empty or blank value
//! counts as no header; a number too large for a `u64` counts as
//! `u64::MAX`, past every event id, so nothing buffered is replayed; any
//! other value that is not a decimal number (`-1`, `1.5`, `abc`) is
//! rejected with [`LastEventIdRejection`], `400 Bad Request`.
//!
//! A stream of all events stays open until
//! [`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
//! is called: call it when shutdown begins, since axum's graceful shutdown
//! waits for every open connection.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum_core::extract::FromRequestParts;
use axum_core::response::IntoResponse;
use etiquette_core::{InvalidLastEventId, SseFrame, Subscription, TaskId, parse_last_event_id};
use futures_util::StreamExt as _;
use http::request::Parts;

use crate::{Decorum, Rejected};

/// The interval of SSE keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `Last-Event-ID` request header: `None` when absent or empty.
///
/// Extraction fails with [`LastEventIdRejection`] when the header is not a
/// decimal event id; see [`parse_last_event_id`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = LastEventIdRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("last-event-id");
        let id = value.map_or(Ok(None), |value| parse_last_event_id(value.as_bytes()));
        id.map(Self).map_err(Rejected)
    }
}

/// A `Last-Event-ID` header that is not a decimal event id:
/// `400 Bad Request`, with a plain-text body saying what is accepted.
pub type LastEventIdRejection = Rejected<InvalidLastEventId>;

/// No task with that id is known: `404 Not Found`, body `no task <id>`.
pub type UnknownTask = Rejected<etiquette_core::UnknownTask>;

/// One task's events as an SSE response, ending after its final event.
///
/// # Errors
/// [`UnknownTask`] when the queue knows no such task.
pub fn task_events(
    decorum: &Decorum,
    id: TaskId,
    last: LastEventId,
) -> Result<impl IntoResponse + use<>, UnknownTask> {
    let subscription = decorum
        .subscribe_task(id, last.0)
        .ok_or(Rejected(etiquette_core::UnknownTask(id)))?;
    Ok(respond(subscription))
}

/// Every task's events as an SSE response, until the queue closes its event
/// streams.
pub fn all_events(decorum: &Decorum, last: LastEventId) -> impl IntoResponse + use<> {
    respond(decorum.subscribe(last.0))
}

fn respond(subscription: Subscription) -> impl IntoResponse {
    let events = subscription.into_stream().map(|item| {
        let frame = SseFrame::from(&item);
        let event = Event::default().event(frame.event).data(frame.data);
        Ok::<_, Infallible>(match frame.id {
            Some(id) => event.id(id.to_string()),
            None => event,
        })
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
