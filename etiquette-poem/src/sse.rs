//! Task events as Server-Sent Events (feature `sse`).
//!
//! ```
//! use poem::{EndpointExt, Response, Route, get, handler, web::Path};
//! use etiquette_poem::{Decorum, Etiquette, TaskId, sse::{self, LastEventId}};
//!
//! /// One task's events; the stream ends after its final event.
//! #[handler]
//! fn task_events(decorum: Decorum, Path(id): Path<TaskId>, last: LastEventId) -> poem::Result<Response> {
//!     Ok(sse::task_events(&decorum, id, last)?)
//! }
//!
//! /// Every task's events, until the queue closes its event streams.
//! #[handler]
//! fn all_events(decorum: Decorum, last: LastEventId) -> Response {
//!     sse::all_events(&decorum, last)
//! }
//!
//! let app = Route::new()
//!     .at("/jobs/:id/events", get(task_events))
//!     .at("/events", get(all_events));
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
//! is called: call it when shutdown begins, or rely on poem's graceful
//! shutdown timeout.

use std::time::Duration;

use etiquette_core::{InvalidLastEventId, SseFrame, Subscription, TaskId, parse_last_event_id};
use futures_util::StreamExt as _;
use poem::web::sse::{Event, SSE};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};

use crate::{Decorum, Rejected};

/// The interval of SSE keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `Last-Event-ID` request header: `None` when absent or empty.
///
/// Extraction fails with [`LastEventIdRejection`] when the header is not a
/// decimal event id; see [`parse_last_event_id`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<u64>);

impl<'a> FromRequest<'a> for LastEventId {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let value = req.headers().get("last-event-id");
        let id = value.map_or(Ok(None), |value| parse_last_event_id(value.as_bytes()));
        id.map(Self).map_err(|error| Rejected(error).into())
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
) -> Result<Response, UnknownTask> {
    let subscription = decorum
        .subscribe_task(id, last.0)
        .ok_or(Rejected(etiquette_core::UnknownTask(id)))?;
    Ok(respond(subscription))
}

/// Every task's events as an SSE response, until the queue closes its event
/// streams.
pub fn all_events(decorum: &Decorum, last: LastEventId) -> Response {
    respond(decorum.subscribe(last.0))
}

fn respond(subscription: Subscription) -> Response {
    let events = subscription.into_stream().map(|item| {
        let frame = SseFrame::from(&item);
        let event = Event::message(frame.data).event_type(frame.event);
        match frame.id {
            Some(id) => event.id(id.to_string()),
            None => event,
        }
    });
    SSE::new(events).keep_alive(KEEP_ALIVE).into_response()
}
