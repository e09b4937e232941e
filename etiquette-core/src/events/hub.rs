//! The queue's event hub: numbers events, keeps the history, and feeds
//! the live subscribers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use super::{EventKind, Lagged, Subscription, TaskEvent};
use crate::engine::cell::TaskCell;
use crate::{TaskId, TaskStatus};

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
pub(super) struct Hub {
    pub(super) capacity: usize,
    pub(super) subscribers: AtomicUsize,
    /// The next event id. Drawn under the lock for published events, so
    /// that they are sent in id order; drawn without it for a final event
    /// published to nobody, which still needs an id of its own.
    pub(super) next_id: AtomicU64,
    state: Mutex<State>,
}

pub(super) struct State {
    history: VecDeque<TaskEvent>,
    /// `None` once closed: subscribers then reach the end of their stream.
    pub(super) live: Option<broadcast::Sender<TaskEvent>>,
}

impl Hub {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
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
    pub(super) fn replay(
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
