//! Task events as Server-Sent Events (feature `sse`, built on
//! `actix-web-lab`'s SSE).
//!
//! ```
//! use actix_web::{App, Responder, web};
//! use etiquette_actix::{Decorum, Etiquette, TaskId, sse::{self, LastEventId, UnknownTask}};
//!
//! /// One task's events; the stream ends after its final event.
//! async fn task_events(decorum: Decorum, id: web::Path<TaskId>, last: LastEventId) -> Result<impl Responder, UnknownTask> {
//!     sse::task_events(&decorum, *id, last)
//! }
//!
//! /// Every task's events, until the queue closes its event streams.
//! async fn all_events(decorum: Decorum, last: LastEventId) -> impl Responder {
//!     sse::all_events(&decorum, last)
//! }
//!
//! let app = App::new()
//!     .route("/jobs/{id}/events", web::get().to(task_events))
//!     .route("/events", web::get().to(all_events));
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
//! is called: call it when shutdown begins, so that the server's graceful
//! stop is not held up.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, Responder};
use actix_web_lab::sse::{Data, Event, Sse};
use etiquette_core::{InvalidLastEventId, SseFrame, Subscription, TaskId, parse_last_event_id};
use futures_util::StreamExt as _;

use crate::{Decorum, Rejected};

/// The interval of SSE keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `Last-Event-ID` request header: `None` when absent or empty.
///
/// Extraction fails with [`LastEventIdRejection`] when the header is not a
/// decimal event id; see [`parse_last_event_id`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastEventId(pub Option<u64>);

impl FromRequest for LastEventId {
    type Error = LastEventIdRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let value = req.headers().get("last-event-id");
        let id = value.map_or(Ok(None), |value| parse_last_event_id(value.as_bytes()));
        ready(id.map(Self).map_err(Rejected))
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
) -> Result<impl Responder + use<>, UnknownTask> {
    let subscription = decorum
        .subscribe_task(id, last.0)
        .ok_or(Rejected(etiquette_core::UnknownTask(id)))?;
    Ok(respond(subscription))
}

/// Every task's events as an SSE response, until the queue closes its event
/// streams.
pub fn all_events(decorum: &Decorum, last: LastEventId) -> impl Responder + use<> {
    respond(decorum.subscribe(last.0))
}

fn respond(subscription: Subscription) -> impl Responder {
    let events = subscription.into_stream().map(|item| {
        let frame = SseFrame::from(&item);
        let data = Data::new(frame.data).event(frame.event);
        Ok::<_, Infallible>(Event::Data(match frame.id {
            Some(id) => data.id(id.to_string()),
            None => data,
        }))
    });
    Sse::from_stream(events).with_keep_alive(KEEP_ALIVE)
}
