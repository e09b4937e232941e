//! How a task is to be added, beyond what it runs: as the engine plans it
//! ([`Plan`]) and as a backend reads it ([`JobOptions`]).

use std::time::{Duration, SystemTime};

use crate::RetryPolicy;
use crate::engine::lanes::DEFAULT_PRIORITY;

/// When a task added to run later may start, as its adder said (see
/// [`TaskBuilder::delay`](crate::TaskBuilder::delay) and
/// [`run_at`](crate::TaskBuilder::run_at)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// This long after the task is accepted.
    After(Duration),
    /// At this time (at once if it has passed).
    At(SystemTime),
}

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

/// How a typed job is to be added, as its adder set it on the
/// [`TaskBuilder`](crate::TaskBuilder), the queue's defaults filled in.
pub struct JobOptions {
    pub(crate) plan: Plan,
    pub(crate) retry: RetryPolicy,
}

impl JobOptions {
    /// Its retry policy.
    pub const fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The time limit of each attempt.
    pub const fn timeout(&self) -> Option<Duration> {
        self.plan.timeout
    }

    /// Its priority: lower starts first.
    pub const fn priority(&self) -> i16 {
        self.plan.priority
    }

    /// When it may start, if not at once.
    pub fn start(&self) -> Option<Start> {
        self.plan.start_intent()
    }

    /// Its unique key, if any.
    pub fn unique_key(&self) -> Option<&str> {
        self.plan.unique_key()
    }
}

impl std::fmt::Debug for JobOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobOptions")
            .field("retry", &self.retry)
            .field("timeout", &self.timeout())
            .field("priority", &self.priority())
            .field("start", &self.start())
            .field("unique_key", &self.unique_key())
            .finish()
    }
}
