//! Task lifecycle events: published by the queue, buffered for resumption,
//! broadcast to any number of subscribers that can never slow the queue.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::broadcast;

use crate::TaskId;

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
    pub(crate) fn from_final(status: &crate::TaskStatus) -> Self {
        use crate::TaskStatus;
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

/// The queue's event hub. Publishing takes one short lock, and only when
/// someone listens or a history is kept: with neither, it is one atomic load.
pub(crate) struct Events {
    capacity: usize,
    subscribers: Arc<AtomicUsize>,
    state: Mutex<State>,
}

struct State {
    next_id: u64,
    history: VecDeque<TaskEvent>,
    /// `None` once closed: subscribers then reach the end of their stream.
    live: Option<broadcast::Sender<TaskEvent>>,
}

impl Events {
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity.max(16));
        Self {
            capacity,
            subscribers: Arc::default(),
            state: Mutex::new(State {
                next_id: 1,
                history: VecDeque::new(),
                live: Some(live),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish(&self, task: TaskId, kind: impl FnOnce() -> EventKind) {
        if self.capacity == 0 && self.subscribers.load(Relaxed) == 0 {
            return;
        }
        let mut state = self.lock();
        let event = TaskEvent {
            id: state.next_id,
            task,
            kind: kind(),
        };
        state.next_id += 1;
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
    }

    /// Ends every subscription once it has delivered what it holds.
    pub(crate) fn close(&self) {
        self.lock().live = None;
    }

    /// Subscribes to events after `after` (all buffered ones when `None`),
    /// for one task or all.
    pub(crate) fn subscribe(&self, task: Option<TaskId>, after: Option<u64>) -> Subscription {
        let state = self.lock();
        // Under the same lock as `publish`: nothing falls between the replay
        // and the live feed, and nothing is delivered twice.
        let mut replay: VecDeque<Result<TaskEvent, Lagged>> = VecDeque::new();
        if let Some(after) = after {
            let oldest = state
                .history
                .front()
                .map_or(state.next_id, |event| event.id);
            // Saturating: the id comes from a client's header, and an id at
            // or past the last one issued replays nothing.
            if after.saturating_add(1) < oldest {
                replay.push_back(Err(Lagged {
                    missed: oldest - after - 1,
                }));
            }
        }
        replay.extend(
            state
                .history
                .iter()
                .filter(|event| after.is_none_or(|after| event.id > after))
                .filter(|event| task.is_none_or(|task| event.task == task))
                .cloned()
                .map(Ok),
        );
        let live = state.live.as_ref().map(broadcast::Sender::subscribe);
        self.subscribers.fetch_add(1, Relaxed);
        Subscription {
            task,
            replay,
            live,
            finished: false,
            subscribers: Arc::clone(&self.subscribers),
        }
    }

    pub(crate) fn last_id(&self) -> u64 {
        self.lock().next_id - 1
    }
}

/// A feed of task events; see [`Decorum::subscribe`](crate::Decorum::subscribe).
///
/// Yields buffered events first, then live ones. A subscription to one task
/// ends after that task's final event; one to all tasks ends when the queue
/// closes its event streams ([`Etiquette::close_event_streams`](crate::Etiquette::close_event_streams)
/// or release). A subscriber that reads too slowly never slows the queue: it
/// gets a [`Lagged`] item saying how many events it missed, then goes on.
pub struct Subscription {
    task: Option<TaskId>,
    replay: VecDeque<Result<TaskEvent, Lagged>>,
    live: Option<broadcast::Receiver<TaskEvent>>,
    finished: bool,
    subscribers: Arc<AtomicUsize>,
}

impl Subscription {
    /// The next event, `Err(Lagged)` after missed ones, or `None` at the end.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is only taken when it is returned.
    pub async fn next(&mut self) -> Option<Result<TaskEvent, Lagged>> {
        if self.finished {
            return None;
        }
        if let Some(item) = self.replay.pop_front() {
            return Some(self.seen(item));
        }
        loop {
            let live = self.live.as_mut()?;
            match live.recv().await {
                Ok(event) if self.task.is_some_and(|task| event.task != task) => {}
                Ok(event) => return Some(self.seen(Ok(event))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Some(Err(Lagged { missed }));
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.live = None;
                    return None;
                }
            }
        }
    }

    fn seen(&mut self, item: Result<TaskEvent, Lagged>) -> Result<TaskEvent, Lagged> {
        if let Ok(event) = &item
            && self.task.is_some()
            && event.kind.is_final()
        {
            self.finished = true;
        }
        item
    }

    /// Whether the buffered part already holds the task's final event.
    pub(crate) fn holds_final(&self) -> bool {
        self.replay
            .iter()
            .any(|item| item.as_ref().is_ok_and(|event| event.kind.is_final()))
    }

    /// Adds an item to deliver after the buffered ones; used to close a
    /// task's feed whose final event is no longer buffered.
    pub(crate) fn push_back(&mut self, item: Result<TaskEvent, Lagged>) {
        self.replay.push_back(item);
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
        self.subscribers.fetch_sub(1, Relaxed);
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
