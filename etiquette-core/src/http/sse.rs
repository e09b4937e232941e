//! Task events as Server-Sent Events, framed once for every adapter
//! (feature `serde`): each adapter only moves the frames into its
//! framework's SSE event and response types.

use std::time::Duration;

use futures_util::{Stream, StreamExt as _};

use crate::{Lagged, Subscription, TaskEvent};

/// The interval of SSE keep-alive comments: every adapter sends one when a
/// stream has been quiet this long, so that proxies and clients do not take
/// it for a dead connection.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One Server-Sent Event, ready for any framework's SSE type: web adapters
/// turn each item of a [`Subscription`] into one, with
/// [`SseFrame::stream`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseFrame {
    /// The `id:` field (the event id, to resume from with `Last-Event-ID`);
    /// none for a `lagged` notice.
    pub id: Option<u64>,
    /// The `event:` field: the event's name, or `lagged`.
    pub event: &'static str,
    /// The `data:` field: the event as a JSON object, or
    /// `{"missed":N}` for a `lagged` notice.
    pub data: String,
}

impl SseFrame {
    /// The subscription's items as frames, one each: a subscriber that fell
    /// behind gets a `lagged` frame, and the stream goes on after it.
    pub fn stream(subscription: Subscription) -> impl Stream<Item = Self> + Send + 'static {
        subscription.into_stream().map(|item| Self::from(&item))
    }

    /// The frame as a framework's event: `new(event, data)`, then
    /// `with_id(…, id)` when the frame has an id. (A `lagged` notice has
    /// none, so that a reconnecting client resumes after the last event it
    /// actually received.)
    pub fn into_event<E>(
        self,
        new: impl FnOnce(&'static str, String) -> E,
        with_id: impl FnOnce(E, String) -> E,
    ) -> E {
        let event = new(self.event, self.data);
        match self.id {
            Some(id) => with_id(event, id.to_string()),
            None => event,
        }
    }
}

impl From<&Result<TaskEvent, Lagged>> for SseFrame {
    fn from(item: &Result<TaskEvent, Lagged>) -> Self {
        match item {
            Ok(event) => Self {
                id: Some(event.id),
                event: event.kind.name(),
                // A map of numbers and strings always serializes.
                data: serde_json::to_string(event).unwrap_or_default(),
            },
            Err(lagged) => Self {
                id: None,
                event: "lagged",
                data: format!("{{\"missed\":{}}}", lagged.missed),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EventKind, TaskId};

    #[test]
    fn lag_notices_become_frames() {
        let frame = SseFrame::from(&Err(Lagged { missed: 12 }));
        assert_eq!(
            (frame.id, frame.event, frame.data.as_str()),
            (None, "lagged", r#"{"missed":12}"#)
        );
    }

    #[test]
    fn events_become_frames_with_their_id() {
        let event = TaskEvent {
            id: 7,
            task: TaskId::new(3),
            kind: EventKind::Started {
                attempt: 1,
                job: None,
            },
        };
        let frame = SseFrame::from(&Ok(event));
        assert_eq!(
            (frame.id, frame.event, frame.data.as_str()),
            (
                Some(7),
                "started",
                r#"{"id":7,"task":3,"event":"started","attempt":1}"#
            )
        );
    }

    #[test]
    fn only_frames_with_an_id_get_one() {
        let as_text = |frame: SseFrame| {
            frame.into_event(
                |event, data| format!("{event} {data}"),
                |text, id| format!("{text} #{id}"),
            )
        };
        let lagged = SseFrame::from(&Err(Lagged { missed: 2 }));
        assert_eq!(as_text(lagged), r#"lagged {"missed":2}"#);
        let started = SseFrame {
            id: Some(5),
            event: "started",
            data: "{}".to_owned(),
        };
        assert_eq!(as_text(started), "started {} #5");
    }
}
