//! The SSE endpoints each web adapter exposes, declared once (feature
//! `serde`).

/// Defines, in a web adapter's `sse` module: [`KEEP_ALIVE`](crate::SSE_KEEP_ALIVE);
/// the `LastEventId` extractor type with a private `from_header`, which
/// reads the header's value for the adapter's extractor impl (the header is
/// named `LastEventId::HEADER`); its rejection `LastEventIdRejection`; the
/// `UnknownTask` rejection; and the endpoints `task_events` and
/// `all_events`, which subscribe and answer with `respond(subscription)`.
///
/// `define_sse!(respond -> Response)` names the adapter's function that
/// turns a stream of [`SseFrame`](crate::SseFrame)s into its framework's
/// SSE response (`impl Stream<Item = SseFrame> + Send + 'static`; the
/// endpoints give it a [`Subscription`](crate::Subscription)'s, through
/// [`SseFrame::stream`](crate::SseFrame::stream), and the dashboard its
/// own), and the type the endpoints return. The adapter's `crate::Decorum` (from
/// [`define_decorum!`](crate::define_decorum)) and `crate::Rejected` (from
/// [`define_rejected!`](crate::define_rejected)) are used.
#[doc(hidden)]
#[macro_export]
// `crate::` is meant: the adapter's `Decorum` and `Rejected`.
#[allow(clippy::crate_in_macro_def)]
macro_rules! define_sse {
    ($respond:ident -> $response:ty) => {
        #[doc(inline)]
        pub use $crate::SSE_KEEP_ALIVE as KEEP_ALIVE;

        /// The `Last-Event-ID` request header: `None` when absent or empty.
        ///
        /// A reconnecting `EventSource` sends the id of the last event it
        /// received, and its stream resumes after it, as far as the queue's
        /// [`event_buffer`](etiquette_core::Builder::event_buffer) reaches.
        /// The header is read by
        /// [`parse_last_event_id`](etiquette_core::parse_last_event_id): an
        /// empty or blank value counts as no header; a number too large for a
        /// `u64` counts as `u64::MAX`, past every event id, so nothing
        /// buffered is replayed; any other value that is not a decimal number
        /// (`-1`, `1.5`, `abc`) fails extraction with
        /// [`LastEventIdRejection`], `400 Bad Request`.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct LastEventId(pub Option<u64>);

        impl LastEventId {
            /// The header's name, as the `http` crates spell it.
            const HEADER: &'static str = "last-event-id";

            /// The header's value read, `None` when the request has none.
            fn from_header(value: Option<&[u8]>) -> Result<Self, LastEventIdRejection> {
                match value {
                    Some(value) => $crate::parse_last_event_id(value)
                        .map(Self)
                        .map_err(crate::Rejected),
                    None => Ok(Self(None)),
                }
            }
        }

        /// A `Last-Event-ID` header that is not a decimal event id:
        /// `400 Bad Request`, with a plain-text body saying what is accepted.
        pub type LastEventIdRejection = crate::Rejected<$crate::InvalidLastEventId>;

        /// No task with that id is known (`404 Not Found`, body `no task
        /// <id>`), or the queue's backend could not be asked (`503 Service
        /// Unavailable`).
        pub type UnknownTask = crate::Rejected<$crate::TaskLookupError>;

        /// One task's events as an SSE response, ending after its final event.
        ///
        /// Each event has the event id as `id:`, its kind as `event:`
        /// (`queued`, `started`, `progress`, …) and a JSON object as `data:`;
        /// a client that fell behind gets a `lagged` event, without an id,
        /// whose data counts the events it missed. A quiet stream gets a
        /// keep-alive comment every [`KEEP_ALIVE`].
        ///
        /// # Errors
        /// [`UnknownTask`] when the queue knows no such task, or its
        /// backend could not be asked.
        pub async fn task_events<B: $crate::backend::Backend>(
            decorum: &crate::Decorum<B>,
            id: $crate::TaskId,
            last: LastEventId,
        ) -> Result<$response, UnknownTask> {
            let found = decorum.subscribe_task(id, last.0).await;
            let subscription = $crate::TaskLookupError::check(id, found)?;
            Ok($respond($crate::SseFrame::stream(subscription)))
        }

        /// Every task's events as an SSE response, framed as in
        /// [`task_events`], until the queue closes its event streams
        /// ([`Etiquette::close_event_streams`](etiquette_core::Etiquette::close_event_streams)).
        pub fn all_events<B: $crate::backend::Backend>(
            decorum: &crate::Decorum<B>,
            last: LastEventId,
        ) -> $response {
            $respond($crate::SseFrame::stream(decorum.subscribe(last.0)))
        }
    };
}
