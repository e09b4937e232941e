//! What a backend holds of the engine it serves ([`Engine`]), and how a
//! backend that stores its jobs elsewhere hands the engine one to run
//! ([`Offer`]).

use std::fmt;
use std::future::Future;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::FutureExt as _;

use crate::api::task::{BoxError, TaskOutput};
use crate::backend::task::LocalTask;
use crate::backend::{Backend, Memory};
use crate::engine::attempt::Accepted;
use crate::engine::cell::TaskCell;
use crate::engine::intake::{Refund, wait_until_placed};
use crate::engine::lanes::DEFAULT_PRIORITY;
use crate::engine::shared::Shared;
use crate::engine::work::{MakeAttempt, Work};
use crate::engine::worker;
use crate::{
    AddTaskError, EventKind, RetryPolicy, Spawner, Subscription, TaskContext, TaskHandle, TaskId,
    TaskStatus,
};

/// The engine of one queue, as its backend reaches it: to make task
/// handles, to hand it jobs to run ([`offer`](Self::offer)), to publish
/// events, and to read the queue's settings. Cheap to clone.
pub struct Engine<B: Backend = Memory> {
    pub(crate) shared: Arc<Shared<B>>,
}

clone_by_field!(Engine, shared);

impl<B: Backend> fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("max_concurrent_tasks", &self.max_concurrent_tasks())
            .field("released", &self.is_released())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Engine<B> {
    pub(crate) const fn new(shared: Arc<Shared<B>>) -> Self {
        Self { shared }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// A handle on task `id`; `duplicate` when an add found it holding the
    /// added job's unique key (see [`TaskHandle::was_duplicate`]).
    pub fn handle(&self, id: TaskId, ticket: B::Ticket, duplicate: bool) -> TaskHandle<B> {
        TaskHandle::new(id, ticket, self.clone(), duplicate)
    }

    /// Tasks run at once by this process, at most.
    pub fn max_concurrent_tasks(&self) -> usize {
        self.shared.config.max_concurrent_tasks
    }

    /// Whether release has begun: intake is closed.
    pub fn is_released(&self) -> bool {
        self.shared.is_released()
    }

    /// Whether a release deadline passed: work still held is to be
    /// cancelled or handed back, not run.
    pub fn deadline_passed(&self) -> bool {
        self.shared.deadline.load(SeqCst)
    }

    /// The queue's spawner, to run the backend's own background work on.
    pub fn spawner(&self) -> &Arc<dyn Spawner> {
        &self.shared.spawner
    }

    /// A reference that does not keep the queue alive: for the backend's
    /// background tasks, which must let the queue go when its handles are
    /// dropped.
    pub fn downgrade(&self) -> WeakEngine<B> {
        WeakEngine {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The events of a task this process's engine holds (added here, or
    /// offered), as [`Decorum::subscribe_task`](crate::Decorum::subscribe_task)
    /// describes them.
    pub fn subscribe_local(&self, task: &LocalTask, after: Option<u64>) -> Subscription {
        self.shared
            .events
            .subscribe_task(Arc::clone(&task.cell), after)
    }

    /// A task run elsewhere (by another process), to follow here: its
    /// events, as the backend hears of them, reach this process's
    /// subscribers through [`publish`](Self::publish) and
    /// [`finish_watched`](Self::finish_watched), and
    /// [`subscribe_local`](Self::subscribe_local) on it ends after its final
    /// event. It is not in this engine's line, nor counted in its stats.
    pub fn watch(&self, id: TaskId) -> LocalTask {
        LocalTask::new(Arc::new(TaskCell::new(id)))
    }

    /// Publishes an event of task `id`, run elsewhere, to this process's
    /// subscribers. A final event goes through
    /// [`finish_watched`](Self::finish_watched) instead.
    pub fn publish(&self, id: TaskId, kind: EventKind) {
        self.shared.events.publish(id, || kind);
    }

    /// Task `watched` (see [`watch`](Self::watch)) finished elsewhere with
    /// `status`: publishes its final event and ends the subscriptions
    /// following it. Only the first call does anything (`false` after).
    pub fn finish_watched(&self, watched: &LocalTask, status: TaskStatus) -> bool {
        let cell = &watched.cell;
        if cell.settle().is_none() {
            return false;
        }
        self.shared.events.publish_final(cell, &status);
        cell.finish(status);
        true
    }

    /// Cancels a task this process's engine holds, as
    /// [`TaskHandle::cancel`] does on the in-memory queue: one waiting in
    /// line is settled as cancelled at once, frees its place and never
    /// runs; a running one is dropped at its next `.await`. `false` if it
    /// had settled already.
    pub fn cancel(&self, task: &LocalTask) -> bool {
        self.shared.cancel(&task.cell)
    }

    /// Hands the engine a job to run here: it waits for a queue place (so a
    /// backend never holds more than the queue's capacity in line; whatever
    /// the queue's [`OnFull`](crate::OnFull), which is for adders), then
    /// joins the line under its own id, and is accounted for like any task
    /// (accepted, then settled once), its transitions told to the backend.
    /// Returns the task, to cancel its attempt later.
    ///
    /// # Errors
    /// [`AddTaskError::Released`] once release began: the job was not
    /// taken, and is the backend's to give back.
    pub async fn offer(&self, offer: Offer) -> Result<LocalTask, AddTaskError> {
        let shared = &self.shared;
        wait_until_placed(shared).await?;
        shared.counters.accepted.fetch_add(1, SeqCst);
        let refund = Refund(&**shared);
        let Offer {
            id,
            attempt,
            make,
            retry,
            timeout,
            priority,
            kind,
        } = offer;
        let span = Accepted::span(id, Some(kind));
        let cell = Arc::new(TaskCell::offered(id, attempt.saturating_sub(1)));
        let work = Work::retryable(make, retry, Some(kind));
        let job = Accepted::new(Arc::clone(&cell), work, timeout, priority, span);
        let joined = shared.backlog.offer(job);
        std::mem::forget(refund);
        match joined {
            Ok(summon) => {
                worker::act(shared, summon);
                Ok(LocalTask::new(cell))
            }
            Err(refused) => {
                shared.backlog.refund_place();
                shared.unaccept();
                drop(refused);
                Err(AddTaskError::Released)
            }
        }
    }
}

/// An [`Engine`] that does not keep its queue alive.
pub struct WeakEngine<B: Backend = Memory> {
    shared: Weak<Shared<B>>,
}

clone_by_field!(WeakEngine, shared);

impl<B: Backend> fmt::Debug for WeakEngine<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakEngine").finish_non_exhaustive()
    }
}

impl<B: Backend> WeakEngine<B> {
    /// The engine, unless its queue is gone.
    pub fn upgrade(&self) -> Option<Engine<B>> {
        self.shared.upgrade().map(Engine::new)
    }
}

/// A job a backend hands the engine to run one attempt of (and retry, as
/// its policy says, should the backend keep retries [here](super::Backoff::Here)).
pub struct Offer {
    id: TaskId,
    attempt: u32,
    make: MakeAttempt,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    priority: i16,
    kind: &'static str,
}

impl Offer {
    /// Task `id`, a typed job of kind `kind` (its [`Job::NAME`](crate::Job::NAME)),
    /// whose attempts `make` makes; attempt 1, never retried, no time
    /// limit, priority 0 unless set.
    pub fn new<M, F>(id: TaskId, kind: &'static str, mut make: M) -> Self
    where
        M: FnMut(TaskContext) -> F + Send + 'static,
        F: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        Self {
            id,
            attempt: 1,
            make: Box::new(move |context| Box::pin(make(context).map(TaskOutput::into_result))),
            retry: RetryPolicy::never(),
            timeout: None,
            priority: DEFAULT_PRIORITY,
            kind,
        }
    }

    /// The number of the attempt to run, from 1 (a durable backend counts
    /// attempts across processes).
    #[must_use]
    pub const fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = if attempt == 0 { 1 } else { attempt };
        self
    }

    /// The job's retry policy, which decides whether a failed attempt is
    /// retried and after what delay.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The time limit of the attempt.
    #[must_use]
    pub const fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Its place in line: lower starts first.
    #[must_use]
    pub const fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }
}

impl fmt::Debug for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The job's identity; its settings show in its task's span and status.
        let Self {
            id, attempt, kind, ..
        } = self;
        write!(
            f,
            "Offer {{ id: {id}, kind: {kind:?}, attempt: {attempt}, .. }}"
        )
    }
}
