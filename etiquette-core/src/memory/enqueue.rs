//! Accepting a task: taking a queue place (waiting for one, or not), then
//! putting the task in line, or on its timer when it was added to run later,
//! or finding the live task that holds its unique key.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, SystemTime};

use tokio::sync::{SemaphorePermit, TryAcquireError};

use crate::api::builder::OnFull;
use crate::engine::attempt::Accepted;
use crate::engine::backlog::Summon;
use crate::engine::cell::TaskCell;
use crate::engine::guard::guarded;
use crate::engine::lanes::DEFAULT_PRIORITY;
use crate::engine::shared::Shared;
use crate::engine::work::Work;
use crate::engine::worker;
use crate::memory::later;
use crate::{AddTaskError, TaskHandle, TaskId};

/// How a task is to be added, beyond what it runs.
pub(crate) struct Plan {
    pub(crate) timeout: Option<Duration>,
    pub(crate) priority: i16,
    /// Boxed: most tasks have none, and the plan is moved along the adding
    /// path of every task.
    pub(crate) extras: Option<Box<Extras>>,
}

/// What few tasks are added with.
#[derive(Default)]
pub(crate) struct Extras {
    /// Not before this, counted from when the task is accepted (not from
    /// when it was prepared: its adder may have waited for a place).
    pub(crate) start: Option<Start>,
    pub(crate) unique_key: Option<Box<str>>,
}

/// When a task added to run later may start.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Start {
    After(Duration),
    At(SystemTime),
}

impl Plan {
    /// A task to run as soon as a slot frees, with the queue's defaults.
    pub(crate) const fn now(timeout: Option<Duration>) -> Self {
        Self {
            timeout,
            priority: DEFAULT_PRIORITY,
            extras: None,
        }
    }

    pub(crate) fn extras(&mut self) -> &mut Extras {
        self.extras.get_or_insert_default()
    }

    /// The delay from now and the time it ends, if the task is to wait.
    pub(crate) fn start(&self) -> Option<(Duration, SystemTime)> {
        match self.extras.as_ref()?.start? {
            Start::After(delay) => start_after(delay),
            Start::At(at) => start_at(at),
        }
    }

    /// When the task is to start, as its adder said.
    pub(crate) fn start_intent(&self) -> Option<Start> {
        self.extras.as_ref()?.start
    }

    pub(crate) fn unique_key(&self) -> Option<&str> {
        self.extras.as_ref()?.unique_key.as_deref()
    }
}

/// The delay until `at`, and `at`; `None` if it has come.
fn start_at(at: SystemTime) -> Option<(Duration, SystemTime)> {
    match at.duration_since(SystemTime::now()) {
        Ok(delay) if !delay.is_zero() => Some((delay, at)),
        _ => None,
    }
}

/// `delay` from now, and when it ends; a time past what the clock can show
/// saturates a century ahead (the timer still waits the whole delay).
fn start_after(delay: Duration) -> Option<(Duration, SystemTime)> {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    if delay.is_zero() {
        return None;
    }
    let now = SystemTime::now();
    let at = now
        .checked_add(delay)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now);
    Some((delay, at))
}

/// Takes a queue place for a task about to be added, as the queue's
/// [`OnFull`] says. The place is given back by the line when the task
/// leaves it (see `backlog`): no `Arc` of the semaphore travels with each
/// task, whose count producers and workers would otherwise both write.
pub(crate) async fn wait_for_place(shared: &Shared) -> Result<(), AddTaskError> {
    match shared.config.on_full {
        // With room in the queue, a plain CAS: no waiter node is built.
        OnFull::Wait if try_place(shared).is_ok() => Ok(()),
        OnFull::Wait => shared
            .backlog
            .places
            .acquire()
            .await
            .map(SemaphorePermit::forget)
            .map_err(|_closed| AddTaskError::Released),
        OnFull::Reject => try_place(shared),
    }
}

/// Takes a queue place if one is free now.
pub(crate) fn try_place(shared: &Shared) -> Result<(), AddTaskError> {
    shared
        .backlog
        .places
        .try_acquire()
        .map(SemaphorePermit::forget)
        .map_err(|error| match error {
            TryAcquireError::NoPermits => AddTaskError::Full,
            TryAcquireError::Closed => AddTaskError::Released,
        })
}

/// The live task holding `key`, for an adder of a task with that key: it
/// is not added, and needs no place.
pub(crate) fn holder(shared: &Arc<Shared>, key: Option<&str>) -> Option<TaskHandle> {
    let cell = shared.store.keys().holder(key?)?;
    Some(TaskHandle::duplicate(cell, Arc::clone(shared)))
}

/// Accepts a task, whose adder holds a place for it, under the next id.
pub(crate) fn enqueue(
    shared: &Arc<Shared>,
    work: Work,
    plan: Plan,
) -> Result<TaskHandle, AddTaskError> {
    // Counted before joining so that a snapshot never shows a task settled
    // that is not yet accepted.
    shared.counters.accepted.fetch_add(1, SeqCst);
    // Should making the job panic (its span calls the tracing subscriber),
    // the task was never accepted: the place goes back, the panic goes on.
    let refund = Refund(shared);
    let mut forgotten = None;
    let start = plan.start();
    let Plan {
        timeout,
        priority,
        extras,
    } = plan;
    let unique_key = extras.and_then(|extras| extras.unique_key);
    // Registered and announced before a worker can claim it (under the
    // line's lock), or before its timer is set: findable and `queued` or
    // `scheduled` before it starts. Its span is made
    // first, the task registered after, so that nothing is registered if
    // the tracing subscriber panics.
    let make = |id| {
        let span = Accepted::span(id, work.kind());
        let (cell, older) = shared.store.accepted(id, start.map(|(_, at)| at));
        forgotten = older;
        // Made last, in place: the job is the largest thing a task moves.
        Accepted::new(cell, work, timeout, priority, span)
    };
    let joined = match unique_key {
        None => join(shared, start, make),
        Some(key) => {
            // Checked again under the keys' lock, held until the task holds
            // its key: of two adders of one key, one adds.
            let mut keys = shared.store.keys();
            if let Some(cell) = keys.holder(&key) {
                drop(keys);
                std::mem::forget(refund);
                shared.backlog.refund_place();
                shared.unaccept();
                return Ok(TaskHandle::duplicate(cell, Arc::clone(shared)));
            }
            let reservation = shared.store.reserve_key();
            let joined = join(shared, start, make);
            if let Ok((cell, _)) = &joined {
                reservation.hold(&mut keys, key, cell);
            }
            // Released before anything runs: a worker started below may
            // settle the task at once, and its settling frees the key under
            // that lock.
            joined
        }
    };
    // Accepted or refused, the place is accounted for from here: disarmed
    // before anything runs (a worker, a timer), whose panic must not give
    // the place back a second time.
    std::mem::forget(refund);
    let added = match joined {
        Ok((cell, next)) => {
            match next {
                Next::Run(summon) => worker::act(shared, summon),
                Next::Wait(job, delay) => later::schedule(job, shared, delay),
            }
            shared.metrics.accepted(|| shared.backlog.waiting().queued);
            Ok(TaskHandle::new(cell, Arc::clone(shared)))
        }
        Err(_refused) => {
            // Only once release has closed the line: never accepted. The
            // task is dropped with the closure, outside any lock.
            shared.backlog.refund_place();
            shared.unaccept();
            Err(AddTaskError::Released)
        }
    };
    if let Some(forgotten) = forgotten {
        forget(forgotten);
    }
    added
}

/// What runs an accepted task next, once every lock is released.
enum Next {
    /// A worker, summoned as the line says.
    Run(Summon),
    /// Its timer: it starts after this delay.
    Wait(Accepted, Duration),
}

/// Makes and accepts a task with `make`, into the line, or held for its
/// timer if it starts later; `make` comes back if the line is closed.
#[inline(always)]
fn join<F>(
    shared: &Shared,
    start: Option<(Duration, SystemTime)>,
    make: F,
) -> Result<(Arc<TaskCell>, Next), F>
where
    F: FnOnce(TaskId) -> Accepted,
{
    match start {
        None => shared
            .backlog
            .join(make)
            .map(|(cell, summon)| (cell, Next::Run(summon))),
        Some((delay, _)) => shared
            .backlog
            .join_later(make)
            .map(|job| (Arc::clone(&job.cell), Next::Wait(job, delay))),
    }
}

/// Gives back an adder's place and acceptance if dropped: disarmed (by
/// `mem::forget`) once the task joined the line or was refused.
struct Refund<'a>(&'a Shared);

impl Drop for Refund<'_> {
    fn drop(&mut self) {
        self.0.backlog.refund_place();
        self.0.unaccept();
    }
}

/// Drops the state of tasks the registry forgot, outside its locks: a
/// task's outcome may hold a user's error, whose destructor is user code.
pub(crate) fn forget<T>(cells: T) {
    if let Err(message) = guarded("dropping a forgotten task's state", move || drop(cells)) {
        tracing::error!("{message}");
    }
}
