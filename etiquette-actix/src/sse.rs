//! Task events as Server-Sent Events (feature `sse`, built on
//! `actix-web-lab`'s SSE).
//!
//! ```
//! use actix_web::{App, Responder, web};
//! use etiquette_actix::{Decorum, Etiquette, TaskId, sse::{self, LastEventId, UnknownTask}};
//!
//! /// One task's events; the stream ends after its final event.
//! async fn task_events(decorum: Decorum, id: web::Path<TaskId>, last: LastEventId) -> Result<impl Responder, UnknownTask> {
//!     sse::task_events(&decorum, *id, last).await
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
//! [`task_events`] says how events are framed, [`LastEventId`] how a
//! reconnecting `EventSource` resumes where it left off.
//!
//! A stream of all events stays open until
//! [`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
//! is called: call it when shutdown begins, so that the server's graceful
//! stop is not held up.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, HttpRequest, Responder};
use actix_web_lab::sse::{Data, Event, Sse};
use etiquette_core::SseFrame;
use futures_util::{Stream, StreamExt as _};

etiquette_core::define_sse!(respond -> impl Responder + use<B>);

impl FromRequest for LastEventId {
    type Error = LastEventIdRejection;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Self::from_header(
            req.headers().get(Self::HEADER).map(HeaderValue::as_bytes),
        ))
    }
}

/// The frames as `actix-web-lab`'s SSE response.
pub(crate) fn respond(frames: impl Stream<Item = SseFrame> + Send + 'static) -> impl Responder {
    let events = frames.map(|frame| {
        let data = frame.into_event(|name, data| Data::new(data).event(name), Data::id);
        Ok::<_, Infallible>(Event::Data(data))
    });
    Sse::from_stream(events).with_keep_alive(KEEP_ALIVE)
}
