//! Accepting a task: taking a queue place (waiting for one, or not), then
//! putting the task in line, or on its timer when it was added to run later,
//! or finding the live task that holds its unique key.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, SystemTime};

use crate::backend::options::Plan;
use crate::engine::attempt::Accepted;
use crate::engine::backlog::Summon;
use crate::engine::cell::{Lives, TaskCell};
use crate::engine::guard::guarded;
use crate::engine::intake::Refund;
use crate::engine::later;
use crate::engine::shared::Shared;
use crate::engine::work::{MemoryWork, Work};
use crate::engine::worker;
use crate::events::EventKind;
use crate::memory::retry::Kept;
use crate::{AddTaskError, RetryPolicy, TaskHandle, TaskId};

/// The live task holding `key`, for an adder of a task with that key: it
/// is not added, and needs no place.
pub(crate) fn holder(shared: &Arc<Shared>, key: Option<&str>) -> Option<TaskHandle> {
    let cell = shared.backend.keys().holder(key?)?;
    Some(TaskHandle::local(cell, shared, true))
}

/// Accepts a retryable task or typed job, whose adder holds a place for
/// it, under the next id (see [`enqueue`]). A typed job's work is kept
/// with its task, to be retried by hand once it ended (see `retry.rs`):
/// made here, outside the line's lock, and only for typed jobs, so that a
/// closure task pays nothing for it.
pub(crate) fn enqueue_retryable(
    shared: &Arc<Shared>,
    (work, policy, kind): (MemoryWork, RetryPolicy, Option<&'static str>),
    plan: Plan,
) -> Result<TaskHandle, AddTaskError> {
    let lives = work.again.map(|remake| {
        Lives::new(Box::new(Kept {
            remake,
            policy: policy.clone(),
            timeout: plan.timeout,
            priority: plan.priority,
            kind,
            unique_key: plan
                .extras
                .as_ref()
                .and_then(|extras| extras.unique_key.clone()),
        }))
    });
    enqueue(shared, Work::keeping(work.make, policy, kind, lives), plan)
}

/// Accepts a task, whose adder holds a place for it, under the next id; a
/// typed job's work carries what is kept of it (see [`enqueue_retryable`]).
pub(crate) fn enqueue(
    shared: &Arc<Shared>,
    mut work: Work,
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
        let (kind, lives) = work.accepted();
        let span = Accepted::span(id, kind);
        let run_at = start.map(|(_, at)| at);
        let (cell, older) = shared.backend.accepted(id, run_at, lives);
        // The job's name read again, and only if someone listens (see
        // `Work::kind`): `kind` kept alive across the call above cost every
        // task a spill.
        shared.events.publish(id, || match run_at {
            None => EventKind::Queued { job: work.kind() },
            Some(run_at) => EventKind::Scheduled {
                run_at,
                job: work.kind(),
            },
        });
        forgotten = older;
        // Made last, in place: the job is the largest thing a task moves.
        Accepted::new(cell, work, timeout, priority, span)
    };
    let joined = match unique_key {
        None => join(shared, start, make),
        Some(key) => {
            // Checked again under the keys' lock, held until the task holds
            // its key: of two adders of one key, one adds.
            let mut keys = shared.backend.keys();
            if let Some(cell) = keys.holder(&key) {
                drop(keys);
                std::mem::forget(refund);
                shared.backlog.refund_place();
                shared.unaccept();
                return Ok(TaskHandle::local(cell, shared, true));
            }
            let reservation = shared.backend.reserve_key();
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
            Ok(TaskHandle::local(cell, shared, false))
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

/// Drops the state of tasks the registry forgot, outside its locks: a
/// task's outcome may hold a user's error, whose destructor is user code.
pub(crate) fn forget<T>(cells: T) {
    if let Err(message) = guarded("dropping a forgotten task's state", move || drop(cells)) {
        tracing::error!("{message}");
    }
}
