//! The board live, as Server-Sent Events, for one page: a `snapshot` of
//! the board first, then its changes as they come, `events` (a JSON array
//! of task events, as many as were ready at once) and `stats` (the
//! counters: every second with a row for the chart, and at most every
//! 250 ms between while events come), and, on a durable backend, `stored`
//! (the jobs it stores across every process, every two seconds). A page that falls behind, or a board corrected
//! after its follower fell behind, gets a fresh `snapshot`: the snapshot
//! is the stream's resumption, so frames carry no ids, and a reconnecting
//! page starts again from one. The stream ends when the queue closes its
//! event streams.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::Stream;
use serde_json::Value;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::board::{Board, Update};
use super::json::View;
use crate::{SseFrame, Stats};

/// Events put in one `events` frame at most.
const EVENTS_PER_FRAME: usize = 256;

/// Reads the queue's counters now, and whether it is released; `None`
/// once the queue is gone. (It holds the queue weakly: an open page must
/// not keep a queue alive whose handles were all dropped.)
pub(crate) type Counters = Arc<dyn Fn() -> Option<(Stats, bool)> + Send + Sync>;

/// The frames of one page's stream.
pub(crate) fn frames(
    board: Arc<Board>,
    view: View,
    counters: Counters,
) -> impl Stream<Item = SseFrame> + Send {
    let live = Live {
        board,
        view,
        counters,
        updates: None,
        ready: VecDeque::new(),
        ended: false,
    };
    futures_util::stream::unfold(live, |mut live| async move {
        live.next().await.map(|frame| (frame, live))
    })
}

struct Live {
    board: Arc<Board>,
    view: View,
    counters: Counters,
    /// The board's changes since the last snapshot; `None` when a snapshot
    /// is due.
    updates: Option<Receiver<Update>>,
    /// Frames made and not yet sent.
    ready: VecDeque<SseFrame>,
    ended: bool,
}

fn frame(event: &'static str, data: &Value) -> SseFrame {
    SseFrame {
        id: None,
        event,
        data: data.to_string(),
    }
}

impl Live {
    async fn next(&mut self) -> Option<SseFrame> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Some(frame);
            }
            if self.ended {
                return None;
            }
            let Some(updates) = self.updates.as_mut() else {
                return Some(self.snapshot());
            };
            let first = match updates.recv().await {
                Ok(update) => update,
                // Fell behind: start again from a snapshot.
                Err(RecvError::Lagged(_)) => {
                    self.updates = None;
                    continue;
                }
                Err(RecvError::Closed) => return None,
            };
            self.take(first);
        }
    }

    /// The board now, with the counters now (its latest sample's, once
    /// the queue is gone), and its changes from this moment on.
    fn snapshot(&mut self) -> SseFrame {
        let view = self.view;
        let limits = self.board.limits;
        let now = (self.counters)();
        let (snapshot, updates) = self.board.read_and_watch(|state| {
            let latest = state.samples.back();
            let (stats, released) = now.unwrap_or_else(|| {
                let stats = latest.map(|sample| sample.stats).unwrap_or_default();
                (stats, latest.is_some_and(|sample| sample.released))
            });
            if state.closed {
                self.ended = true;
            }
            view.snapshot(limits, state, &stats, released)
        });
        self.updates = Some(updates);
        frame("snapshot", &snapshot)
    }

    /// Turns `first` and every change ready after it into frames.
    fn take(&mut self, first: Update) {
        let mut events = Vec::new();
        let mut update = Some(first);
        while let Some(next) = update.take() {
            match next {
                Update::Event(seen) => events.push(self.view.event(&seen)),
                Update::Sample(sample) => {
                    self.flush(&mut events);
                    self.ready.push_back(frame("stats", &View::sample(&sample)));
                }
                Update::Counters(sample) => {
                    self.flush(&mut events);
                    self.ready
                        .push_back(frame("stats", &View::counters(&sample)));
                }
                Update::Stored(stored) => {
                    self.flush(&mut events);
                    self.ready
                        .push_back(frame("stored", &View::stored(&stored)));
                }
                Update::Resync => {
                    // What is ready is in the snapshot too.
                    events.clear();
                    self.updates = None;
                    return;
                }
                Update::Closed => {
                    self.ended = true;
                    break;
                }
            }
            if events.len() >= EVENTS_PER_FRAME {
                break;
            }
            update = match self.updates.as_mut().map(Receiver::try_recv) {
                Some(Ok(next)) => Some(next),
                Some(Err(TryRecvError::Lagged(_))) => {
                    events.clear();
                    self.updates = None;
                    return;
                }
                _ => None,
            };
        }
        self.flush(&mut events);
    }

    fn flush(&mut self, events: &mut Vec<Value>) {
        if !events.is_empty() {
            let array = Value::Array(std::mem::take(events));
            self.ready.push_back(frame("events", &array));
        }
    }
}
