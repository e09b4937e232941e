//! A randomised model of the queue's central promises, through the public
//! API only: proptest generates queue settings and a sequence of operations
//! (tasks that succeed, fail, panic, block, never finish, time out, retry;
//! cancels, gates opened, subscriptions), runs them, releases the queue and
//! checks what a user can observe:
//!
//! * release returns, and its report accounts for every accepted task:
//!   `accepted == completed + failed + cancelled`, each counter matching the
//!   outcomes the handles resolved to, `panicked` exactly the tasks whose
//!   own code panicked (not cancelled first); the stats agree with it;
//! * every handle's outcome resolves to one final status, and a task whose
//!   outcome the model can tell (it succeeds at once, is not cancelled, no
//!   deadline cuts it...) ends that way;
//! * never more than `max_concurrent_tasks` task bodies run at once, and the
//!   pool still runs that many at the end (no worker lost to a panic);
//! * every task subscription ends, after exactly one final event;
//! * a task the queue refused never runs.
//!
//! It runs on a paused clock (current-thread runtime: outcomes that depend
//! on time are exact) and on a two-worker runtime with a real clock (tiny
//! durations, real parallelism). `PROPTEST_CASES` sets the number of cases
//! of each.
//!
//! Panics of the tasks' own code are deliberate; their messages, starting
//! with `model:`, land on stderr (the panic hook is process-wide and the
//! other tests run in parallel, so it is left alone).

mod check;
mod clock;
mod outcomes;
mod release;
mod run;
mod scenario;
mod tasks;

use etiquette_core::{Decorum, Etiquette, Lagged, TaskEvent, TaskHandle};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::task::JoinHandle;

use crate::support::Gate;
use clock::{Clock, run};
use scenario::{Body, End, Retry, Settings, scenario};
use tasks::{InFlight, Witness};

// Operations that hit known bugs of the core, switched off so that CI stays
// green until they are fixed. Turn each on once its fix lands; the model
// states the required behaviour already.

/// Known bug: a retry factory that panics, or a `retry_if` predicate that
/// panics, unwinds through the worker running the task: the worker is lost
/// for good (the pool runs one task fewer at once; with one slot, the tasks
/// queued behind are reported cancelled) and the task is reported cancelled
/// instead of panicked.
const FACTORY_AND_PREDICATE_PANICS: bool = true;

/// Known bug: a task future whose `Drop` panics, when its time limit, a
/// cancel or a release deadline drops it, unwinds through the worker: the
/// worker is lost, and a timed-out task is reported cancelled instead of
/// panicked (a cancelled one rightly stays cancelled).
const FUTURES_WHOSE_DROP_PANICS: bool = true;

/// Known bug: a task error whose `Display` panics, rendered for the task's
/// events (its final or retrying event), unwinds through the worker outside
/// any guard: the worker is lost and the task never settled. Release then
/// never returns, nor do the task's event streams end; with one slot it
/// returns a report without the task's outcome, and the streams end without
/// a final event.
const ERRORS_WHOSE_DISPLAY_PANICS: bool = true;

/// Known bug: a backoff of `Duration::MAX` (no cap) overflows when the wait
/// before a retry is computed (`Duration::mul_f64`), which panics in the
/// worker: the worker is lost and the task stays `running` for ever, so
/// neither a cancel nor a release deadline settles it. It should wait to
/// retry until one of them does.
const HUGE_BACKOFFS: bool = true;

/// Known bug: `subscribe_task` racing the task's settling (its final event
/// published, its status not yet) on a queue keeping no event history gets
/// neither the final event nor the one made up for finished tasks: the
/// stream stays open, empty, until the queue closes its streams. Seen on the
/// two-thread runtime, about once in a few thousand cases. While off, such an
/// empty stream is tolerated there.
const STREAMS_SUBSCRIBED_AS_THE_TASK_SETTLES: bool = true;

/// Gates the tasks may wait at; one more, after them, is the pool probe's.
const USER_GATES: usize = 3;
const PROBE_GATE: usize = USER_GATES;

// The model's state. It is declared here, in the parent of the modules that
// build, run, release and check it, so that they all see its fields.

#[derive(Debug, Clone, Copy)]
enum Spec {
    Once(Body),
    /// Blocked at the probe gate, no time limit.
    Probe,
    Retryable {
        kind: Retry,
        attempts: u32,
        backoff: u32,
    },
}

/// An accepted task.
struct Tracked {
    label: String,
    spec: Spec,
    handle: TaskHandle,
    cancels: Vec<CancelSeen>,
    unfinished_at_release: bool,
}

#[derive(Debug, Clone, Copy)]
struct CancelSeen {
    /// What `cancel()` returned.
    returned: bool,
    /// Whether the task was queued or waiting to retry just before.
    waiting: bool,
}

/// A task the queue did not accept.
struct Refused {
    label: String,
    witness: Witness,
}

type Reader = JoinHandle<Vec<Result<TaskEvent, Lagged>>>;

struct Model {
    clock: Clock,
    settings: Settings,
    end: End,
    etiquette: Etiquette,
    decorum: Decorum,
    in_flight: InFlight,
    gates: Vec<Gate>,
    opened: Vec<bool>,
    tasks: Vec<Tracked>,
    refused: Vec<Refused>,
    readers: Vec<(usize, Reader)>,
}

fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        // Minimised cases are printed; no regression files in the tree.
        failure_persistence: None,
        max_shrink_iters: 1024,
        // In milliseconds: a case that hangs costs a bound each time.
        max_shrink_time: 120_000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(64))]
    #[test]
    fn the_queue_keeps_its_promises_on_a_paused_clock(scenario in scenario()) {
        run(Clock::Paused, &scenario)?;
    }
}

proptest! {
    #![proptest_config(config(32))]
    #[test]
    fn the_queue_keeps_its_promises_on_two_threads(scenario in scenario()) {
        run(Clock::Real, &scenario)?;
    }
}

fn fail(message: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(message.into())
}
