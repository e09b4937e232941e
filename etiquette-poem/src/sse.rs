//! Task events as Server-Sent Events (feature `sse`).
//!
//! ```
//! use poem::{EndpointExt, Response, Route, get, handler, web::Path};
//! use etiquette_poem::{Decorum, Etiquette, TaskId, sse::{self, LastEventId}};
//!
//! /// One task's events; the stream ends after its final event.
//! #[handler]
//! async fn task_events(decorum: Decorum, Path(id): Path<TaskId>, last: LastEventId) -> poem::Result<Response> {
//!     Ok(sse::task_events(&decorum, id, last).await?)
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
//! [`task_events`] says how events are framed, [`LastEventId`] how a
//! reconnecting `EventSource` resumes where it left off.
//!
//! A stream of all events stays open until
//! [`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
//! is called: call it when shutdown begins, or rely on poem's graceful
//! shutdown timeout.

use etiquette_core::SseFrame;
use futures_util::{Stream, StreamExt as _};
use poem::http::HeaderValue;
use poem::web::sse::{Event, SSE};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};

etiquette_core::define_sse!(respond -> Response);

impl<'a> FromRequest<'a> for LastEventId {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let value = req.headers().get(Self::HEADER).map(HeaderValue::as_bytes);
        Ok(Self::from_header(value)?)
    }
}

/// The frames as poem's SSE response.
pub(crate) fn respond(frames: impl Stream<Item = SseFrame> + Send + 'static) -> Response {
    let events = frames.map(|frame| {
        frame.into_event(
            |name, data| Event::message(data).event_type(name),
            Event::id,
        )
    });
    SSE::new(events).keep_alive(KEEP_ALIVE).into_response()
}
