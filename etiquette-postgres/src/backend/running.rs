//! The jobs this process holds: from before each is offered to the engine
//! until its attempt ends here, with the attempt claimed and its task once
//! the engine took it. (Their leases outlive this, until the outcomes are
//! written: see `leases.rs`.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, PoisonError};

use etiquette_core::backend::{Engine, LocalTask, TaskRef};
use tokio::sync::Notify;

use super::Postgres;

/// A job this process claimed: the attempt it holds, and its task in the
/// engine once offered.
struct Held {
    attempt: i32,
    /// Its kind's `Job::NAME`, as this process registered it: for the
    /// events announced as it runs here.
    kind: &'static str,
    task: Option<LocalTask>,
    /// The older attempt's task this claim replaced (its lease was lost,
    /// and this process claimed the job again), until it ends.
    replaced: Option<LocalTask>,
}

/// How an attempt that ended here was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// As this attempt, claimed: its outcome is to be written.
    Held(i32),
    /// An older attempt, replaced by a newer claim of its job: its lease
    /// is gone, and nothing of it is to be written.
    Replaced,
    /// Not at all.
    Unknown,
}

/// The jobs this process holds.
#[derive(Default)]
pub(super) struct Running {
    /// By id, from before the job is offered to the engine until its
    /// attempt ends here: whoever reports the end finds the attempt.
    held: Mutex<HashMap<i64, Held>>,
    /// Set once a claimer started: only then is there a claim to stop.
    /// (`SeqCst`, as the other flags here: set and read rarely, so no
    /// weaker order is worth reasoning about.)
    claimer: AtomicBool,
    /// Notified once release began.
    pub(super) closing: Notify,
    /// Set once, after release began, the claims stopped and what was
    /// claimed but not taken in was handed back; notified then.
    stopped: AtomicBool,
    stopped_changed: Notify,
    /// Set once a release deadline passed: attempts cancelled from then on
    /// are handed back, not cancelled.
    handing_back: AtomicBool,
}

impl Running {
    /// A claimer started: a release waits for its claims to stop.
    pub(super) fn claimer_started(&self) {
        self.claimer.store(true, SeqCst);
    }

    /// The claims stopped for good (see `stopped`).
    pub(super) fn claims_stopped(&self) {
        self.stopped.store(true, SeqCst);
        self.stopped_changed.notify_waiters();
    }

    /// Waits until the claims stopped, if a claimer ever started.
    pub(super) async fn claims_stop(&self) {
        if !self.claimer.load(SeqCst) {
            return; // never connected: nothing was claimed
        }
        loop {
            let mut changed = std::pin::pin!(self.stopped_changed.notified());
            changed.as_mut().enable();
            if self.stopped.load(SeqCst) {
                return;
            }
            changed.await;
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Job `id`, of kind `kind`, is about to be offered for attempt
    /// `attempt`; an older attempt of it still here (its lease was lost,
    /// and this process claimed it again) is returned, to be cancelled.
    pub(super) fn expect(&self, id: i64, attempt: i32, kind: &'static str) -> Option<LocalTask> {
        let mut held = self.held();
        let older = held.get(&id).and_then(|older| older.task.clone());
        let replaced = older.clone();
        held.insert(
            id,
            Held {
                attempt,
                kind,
                task: None,
                replaced,
            },
        );
        older
    }

    /// The engine took job `id`'s attempt `attempt` as `task`, unless the
    /// attempt ended already.
    pub(super) fn hold(&self, id: i64, attempt: i32, task: LocalTask) {
        if let Some(held) = self.held().get_mut(&id)
            && held.attempt == attempt
        {
            held.task = Some(task);
        }
    }

    /// The task of job `id` held here, of attempt `attempt` if given.
    pub(super) fn task(&self, id: i64, attempt: Option<i32>) -> Option<LocalTask> {
        let held = self.held();
        let held = held.get(&id)?;
        if attempt.is_some_and(|attempt| held.attempt != attempt) {
            return None;
        }
        held.task.clone()
    }

    /// The kind of job `id`, if it is held here.
    pub(super) fn kind(&self, id: i64) -> Option<&'static str> {
        Some(self.held().get(&id)?.kind)
    }

    /// Cancels job `id`'s attempt `attempt` here, running or still in
    /// line.
    pub(super) fn cancel(&self, engine: &Engine<Postgres>, id: i64, attempt: Option<i32>) {
        if let Some(task) = self.task(id, attempt) {
            engine.cancel(&task);
        }
    }

    /// Job `id`'s attempt run by `task` is over here: how it was held.
    /// (Its room is freed by the completer, which is handed the outcome.)
    pub(super) fn end(&self, id: i64, task: TaskRef<'_>) -> Ending {
        let mut held = self.held();
        let Some(this) = held.get_mut(&id) else {
            return Ending::Unknown;
        };
        if this.replaced.as_ref().is_some_and(|older| task.is(older)) {
            this.replaced = None;
            return Ending::Replaced;
        }
        let attempt = this.attempt;
        held.remove(&id);
        Ending::Held(attempt)
    }

    /// Job `id`'s attempt `attempt` is over here, never offered.
    pub(super) fn done(&self, id: i64, attempt: i32) {
        let mut held = self.held();
        if held.get(&id).is_some_and(|held| held.attempt == attempt) {
            held.remove(&id);
        }
    }

    /// A release deadline passed: every attempt held here stops, and is
    /// handed back rather than cancelled.
    pub(super) fn hand_back_all(&self) {
        self.handing_back.store(true, SeqCst);
        for held in self.held().values() {
            if let Some(task) = &held.task {
                task.cancel_attempt();
            }
        }
    }

    /// Whether attempts cancelled now are handed back (a release deadline
    /// passed).
    pub(super) fn handing_back(&self) -> bool {
        self.handing_back.load(SeqCst)
    }
}
