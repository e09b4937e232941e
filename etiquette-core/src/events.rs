//! Task lifecycle events: published by the queue, buffered for resumption,
//! broadcast to any number of subscribers that can never slow the queue.

use std::collections::VecDeque;
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::Stream;
use futures_util::future::{Either, select};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::cell::TaskCell;
use crate::{TaskId, TaskStatus};

/// One step in a task's life, numbered queue-wide.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TaskEvent {
    /// Increases by one with every event the queue publishes: an SSE
    /// `id`, to resume from with `Last-Event-ID`.
    pub id: u64,
    /// The task it is about.
    pub task: TaskId,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// Accepted into the queue.
    Queued,
    /// An attempt started (from 1).
    Started {
        /// The attempt.
        attempt: u32,
    },
    /// The task reported progress through its [`TaskContext`](crate::TaskContext).
    Progress {
        /// How far along, from 0.0 to 1.0, if the task said.
        fraction: Option<f32>,
        /// A short message, if the task gave one.
        message: Option<String>,
    },
    /// An attempt failed; the next starts after `backoff`.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next attempt.
        backoff: Duration,
        /// Why it failed.
        error: String,
    },
    /// Finished successfully.
    Succeeded {
        /// Attempts made.
        attempts: u32,
    },
    /// Finished with an error or a panic.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        error: String,
    },
    /// The last attempt ran past its time limit.
    TimedOut {
        /// Attempts made.
        attempts: u32,
    },
    /// Cancelled, or dropped with its executor.
    Cancelled,
}

impl EventKind {
    /// A short lowercase name (`queued`, `started`, `progress`, `retrying`,
    /// `succeeded`, `failed`, `timed_out`, `cancelled`), for the SSE `event`
    /// field.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Started { .. } => "started",
            Self::Progress { .. } => "progress",
            Self::Retrying { .. } => "retrying",
            Self::Succeeded { .. } => "succeeded",
            Self::Failed { .. } => "failed",
            Self::TimedOut { .. } => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    /// The final event matching a finished status.
    pub(crate) fn from_final(status: &TaskStatus) -> Self {
        match status {
            TaskStatus::Succeeded { attempts } => Self::Succeeded {
                attempts: *attempts,
            },
            TaskStatus::Failed { attempts, error } => Self::Failed {
                attempts: *attempts,
                error: error.to_string(),
            },
            TaskStatus::TimedOut { attempts, .. } => Self::TimedOut {
                attempts: *attempts,
            },
            _ => Self::Cancelled,
        }
    }

    /// Whether this is the task's last event.
    pub const fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded { .. } | Self::Failed { .. } | Self::TimedOut { .. } | Self::Cancelled
        )
    }
}

/// A subscriber fell behind and `missed` events were dropped for it; the
/// stream goes on with the next ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    /// How many events it missed.
    pub missed: u64,
}

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the subscriber fell behind and missed {} events",
            self.missed
        )
    }
}

impl std::error::Error for Lagged {}

/// The live feed's ring per subscriber: at least this many events...
const LIVE_RING_MIN: usize = 16;
/// ...and at most this many, allocated up front. A subscriber falling
/// further behind catches up from the history (`event_buffer` events,
/// grown as they come), so a large buffer costs nothing until it fills.
const LIVE_RING_MAX: usize = 1024;

/// The queue's event hub. Publishing takes one short lock, and only when
/// someone listens or a history is kept: with neither, it is one atomic load.
pub(crate) struct Events {
    hub: Arc<Hub>,
}

/// Held by the queue and by every subscription, which catch up from its
/// history. It holds nothing of the queue's, so a subscription never keeps
/// a dropped queue alive; the queue closes it when it goes.
struct Hub {
    capacity: usize,
    subscribers: AtomicUsize,
    /// The next event id. Drawn under the lock for published events, so
    /// that they are sent in id order; drawn without it for a final event
    /// published to nobody, which still needs an id of its own.
    next_id: AtomicU64,
    state: Mutex<State>,
}

struct State {
    history: VecDeque<TaskEvent>,
    /// `None` once closed: subscribers then reach the end of their stream.
    live: Option<broadcast::Sender<TaskEvent>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under this lock is complete before anything can
        // panic, and no user code runs under it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether an event published now would reach anyone.
    fn wanted(&self) -> bool {
        self.capacity > 0 || self.subscribers.load(Relaxed) > 0
    }

    /// Numbers, keeps and broadcasts one event; returns its id.
    fn publish(&self, state: &mut State, task: TaskId, kind: EventKind) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        let event = TaskEvent { id, task, kind };
        if self.capacity > 0 {
            if state.history.len() == self.capacity {
                state.history.pop_front();
            }
            state.history.push_back(event.clone());
        }
        if let Some(live) = &state.live {
            // No receiver is not an error: nobody is listening right now.
            let _ = live.send(event);
        }
        id
    }

    /// Buffered events after `after` for `task` (all tasks with `None`),
    /// preceded by a `Lagged` notice when the history no longer reaches
    /// back to `after`.
    fn replay(
        &self,
        state: &State,
        task: Option<TaskId>,
        after: Option<u64>,
        into: &mut VecDeque<Result<TaskEvent, Lagged>>,
    ) {
        if let Some(after) = after {
            let oldest = state
                .history
                .front()
                .map_or_else(|| self.next_id.load(Relaxed), |event| event.id);
            // Saturating: the id comes from a client's header, and an id at
            // or past the last one issued replays nothing.
            if after.saturating_add(1) < oldest {
                into.push_back(Err(Lagged {
                    missed: oldest - after - 1,
                }));
            }
        }
        into.extend(
            state
                .history
                .iter()
                .filter(|event| after.is_none_or(|after| event.id > after))
                .filter(|event| task.is_none_or(|task| event.task == task))
                .cloned()
                .map(Ok),
        );
    }
}

impl Events {
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity.clamp(LIVE_RING_MIN, LIVE_RING_MAX));
        Self {
            hub: Arc::new(Hub {
                capacity,
                subscribers: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                state: Mutex::new(State {
                    history: VecDeque::new(),
                    live: Some(live),
                }),
            }),
        }
    }

    pub(crate) fn publish(&self, task: TaskId, kind: impl FnOnce() -> EventKind) {
        if !self.hub.wanted() {
            return;
        }
        let mut state = self.hub.lock();
        self.hub.publish(&mut state, task, kind());
    }

    /// Publishes progress of a task, unless it has settled: nothing follows
    /// a task's final event, not even a report from a helper that kept its
    /// context past a time-out.
    pub(crate) fn publish_progress(&self, cell: &TaskCell, kind: impl FnOnce() -> EventKind) {
        if !self.hub.wanted() {
            return;
        }
        let mut state = self.hub.lock();
        // Settling comes before the final event, which takes this lock too.
        if !cell.is_settled() {
            self.hub.publish(&mut state, cell.id, kind());
        }
    }

    /// Publishes a task's final event and records its id in the cell; call
    /// before the cell's outcome is set. Published to nobody, it still gets
    /// an id of its own, which a subscriber arriving later gives the final
    /// event it makes up: a client that saw the task's last progress event
    /// and resumes from it is owed the final one.
    pub(crate) fn publish_final(&self, cell: &TaskCell, status: &TaskStatus) {
        let id = if self.hub.wanted() {
            let mut state = self.hub.lock();
            self.hub
                .publish(&mut state, cell.id, EventKind::from_final(status))
        } else {
            self.hub.next_id.fetch_add(1, Relaxed)
        };
        cell.set_final_event(id);
    }

    /// Ends every subscription once it has delivered what it holds.
    pub(crate) fn close(&self) {
        self.hub.lock().live = None;
    }

    /// Subscribes to every task's events after `after` (all buffered ones
    /// when `None`).
    pub(crate) fn subscribe(&self, after: Option<u64>) -> Subscription {
        let state = self.hub.lock();
        // Under the same lock as `publish`: nothing falls between the replay
        // and the live feed, and nothing is delivered twice.
        let mut replay = VecDeque::new();
        self.hub.replay(&state, None, after, &mut replay);
        let live = state.live.as_ref().map(broadcast::Sender::subscribe);
        Subscription::new(
            &self.hub,
            None,
            None,
            replay,
            live,
            self.hub.next_id.load(Relaxed) - 1,
        )
    }

    /// Subscribes to one task's events after `after`; the subscription ends
    /// after the task's final event, exactly once, whenever it subscribes.
    pub(crate) fn subscribe_task(&self, cell: Arc<TaskCell>, after: Option<u64>) -> Subscription {
        let state = self.hub.lock();
        let mut replay = VecDeque::new();
        self.hub.replay(&state, Some(cell.id), after, &mut replay);
        let cursor = self.hub.next_id.load(Relaxed) - 1;
        if let Some(status) = cell.outcome() {
            // Finished before we subscribed: its final event was published
            // (or skipped) already, so the feed is what is buffered, closed
            // by the final event, unless the client has seen it.
            let holds_final = replay
                .iter()
                .any(|item| item.as_ref().is_ok_and(|event| event.kind.is_final()));
            let id = cell.final_event();
            if !holds_final && after.is_none_or(|after| after < id) {
                replay.push_back(Ok(TaskEvent {
                    id,
                    task: cell.id,
                    kind: EventKind::from_final(status),
                }));
            }
            return Subscription::new(&self.hub, Some(cell.id), None, replay, None, cursor);
        }
        let live = state.live.as_ref().map(broadcast::Sender::subscribe);
        Subscription::new(&self.hub, Some(cell.id), Some(cell), replay, live, cursor)
    }
}

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
    fn new(
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
