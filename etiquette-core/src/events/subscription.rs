//! A subscriber's feed of task events: replay, live feed, catching up
//! after a lag, and the final event of a followed task, exactly once.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use futures_util::Stream;
use futures_util::future::{Either, select};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::hub::Hub;
use super::{EventKind, Lagged, TaskEvent};
use crate::TaskId;
use crate::engine::cell::TaskCell;

/// A feed of task events; see [`Decorum::subscribe`](crate::Decorum::subscribe).
///
/// Yields buffered events first, then live ones. A subscription to one task
/// ends after that task's final event, exactly once, and nothing of that
/// task follows it; one to all tasks ends when the queue closes its event
/// streams ([`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
/// or release). A subscriber that reads too slowly never slows the queue:
/// it catches up from the queue's buffered history
/// ([`Builder::event_buffer`](crate::Builder::event_buffer)) as far as it
/// reaches, and gets a [`Lagged`] item saying how many events it missed
/// beyond that, then goes on.
pub struct Subscription {
    hub: Arc<Hub>,
    task: Option<TaskId>,
    /// The task followed, until its final event is delivered: when it
    /// finishes, its final event is found in the feed or made up from it.
    cell: Option<Arc<TaskCell>>,
    replay: VecDeque<Result<TaskEvent, Lagged>>,
    live: Option<broadcast::Receiver<TaskEvent>>,
    /// Every event up to this id has been delivered, filtered out or
    /// queued in `replay`: where to catch up from after a lag.
    cursor: u64,
    finished: bool,
}

impl Subscription {
    pub(super) fn new(
        hub: &Arc<Hub>,
        task: Option<TaskId>,
        cell: Option<Arc<TaskCell>>,
        replay: VecDeque<Result<TaskEvent, Lagged>>,
        live: Option<broadcast::Receiver<TaskEvent>>,
        cursor: u64,
    ) -> Self {
        hub.subscribers.fetch_add(1, Relaxed);
        Self {
            hub: Arc::clone(hub),
            task,
            cell,
            replay,
            live,
            cursor,
            finished: false,
        }
    }

    /// The next event, `Err(Lagged)` after missed ones, or `None` at the end.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is only taken when it is returned.
    pub async fn next(&mut self) -> Option<Result<TaskEvent, Lagged>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(item) = self.replay.pop_front() {
                return Some(self.seen(item));
            }
            let Some(live) = self.live.as_mut() else {
                if self
                    .cell
                    .as_ref()
                    .is_some_and(|cell| cell.outcome().is_some())
                {
                    self.catch_up_final();
                    continue;
                }
                self.finished = true;
                return None;
            };
            let received = match &self.cell {
                // The live feed first: the final event, when published, is
                // sent before the outcome is set.
                Some(cell) => match select(pin!(live.recv()), pin!(cell.finished())).await {
                    Either::Left((received, _)) => Some(received),
                    Either::Right(_) => None,
                },
                None => Some(live.recv().await),
            };
            let Some(received) = received else {
                self.catch_up_final();
                continue;
            };
            match received {
                Ok(event) => {
                    self.cursor = event.id;
                    if self.task.is_none_or(|task| event.task == task) {
                        return Some(self.seen(Ok(event)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    if let Some(lagged) = self.catch_up(missed) {
                        return Some(Err(lagged));
                    }
                }
                Err(RecvError::Closed) => self.live = None,
            }
        }
    }

    fn seen(&mut self, item: Result<TaskEvent, Lagged>) -> Result<TaskEvent, Lagged> {
        if let Ok(event) = &item
            && self.task.is_some()
            && event.kind.is_final()
        {
            self.finished = true;
            self.cell = None;
            self.live = None;
        }
        item
    }

    /// After the live feed dropped events for us: takes what it dropped from
    /// the history, and a fresh live feed, under the publishers' lock so
    /// that nothing falls between them. Returns what is lost for good.
    fn catch_up(&mut self, missed: u64) -> Option<Lagged> {
        if self.hub.capacity == 0 {
            return Some(Lagged { missed });
        }
        let state = self.hub.lock();
        let mut replay = VecDeque::new();
        self.hub
            .replay(&state, self.task, Some(self.cursor), &mut replay);
        self.live = state.live.as_ref().map(broadcast::Sender::subscribe);
        self.cursor = self.hub.next_id.load(Relaxed) - 1;
        drop(state);
        let lagged = match replay.front() {
            Some(Err(lagged)) => Some(*lagged),
            _ => None,
        };
        self.replay.extend(replay.into_iter().filter(Result::is_ok));
        lagged
    }

    /// The followed task has finished: takes its remaining events from the
    /// live feed (all sent before its outcome was set), and makes up its
    /// final event if the feed does not hold it (published to nobody, or
    /// dropped by a lag).
    fn catch_up_final(&mut self) {
        let Some(cell) = self.cell.take() else {
            return;
        };
        let mut holds_final = false;
        if let Some(live) = self.live.as_mut() {
            while !holds_final {
                match live.try_recv() {
                    Ok(event) => {
                        self.cursor = event.id;
                        if event.task == cell.id {
                            holds_final = event.kind.is_final();
                            self.replay.push_back(Ok(event));
                        }
                    }
                    Err(TryRecvError::Lagged(missed)) => {
                        self.replay.push_back(Err(Lagged { missed }));
                    }
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
        }
        self.live = None;
        if !holds_final && let Some(status) = cell.outcome() {
            self.replay.push_back(Ok(TaskEvent {
                id: cell.final_event(),
                task: cell.id,
                kind: EventKind::from_final(status),
            }));
        }
    }

    /// The subscription as a `Stream`, for SSE responses.
    pub fn into_stream(self) -> impl Stream<Item = Result<TaskEvent, Lagged>> + Send + 'static {
        futures_util::stream::unfold(self, |mut subscription| async move {
            subscription.next().await.map(|item| (item, subscription))
        })
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Relaxed);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("task", &self.task)
            .field("buffered", &self.replay.len())
            .field("finished", &self.finished)
            .finish()
    }
}
