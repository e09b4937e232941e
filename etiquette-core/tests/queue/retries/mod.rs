//! Retries, backoff and time limits, on tokio's paused clock: every instant
//! asserted here is virtual and exact.

mod not_retried;
mod release;
mod schedule;
mod time_limits;

use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etiquette_core::{Decorum, RetryPolicy, TaskHandle, TaskOutput};
use tokio::time::Instant;

use crate::support::within_for;

const SECOND: Duration = Duration::from_secs(1);
/// The bound of a wait that runs through a retry schedule: longer than any
/// schedule here (the longest takes 12 s). On the paused clock a hang still
/// fails at once, when the clock jumps to it.
const SCHEDULE: Duration = Duration::from_secs(30);

/// Records when each attempt starts, relative to the test's start.
#[derive(Clone)]
struct Attempts {
    start: Instant,
    at: Arc<Mutex<Vec<Duration>>>,
}

impl Attempts {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            at: Arc::default(),
        }
    }

    fn record(&self) -> usize {
        let mut at = self.at.lock().unwrap();
        at.push(self.start.elapsed());
        at.len()
    }

    fn times(&self) -> Vec<Duration> {
        self.at.lock().unwrap().clone()
    }

    /// A task factory that records each attempt, then makes it with
    /// `attempt`, given the attempt's number (the first is 1).
    fn recording<F>(
        &self,
        mut attempt: impl FnMut(usize) -> F + Send + 'static,
    ) -> impl FnMut() -> F + Send + 'static {
        let recorder = self.clone();
        move || attempt(recorder.record())
    }

    /// A task factory that records each attempt and fails it.
    fn always_failing(
        &self,
    ) -> impl FnMut() -> std::future::Ready<Result<(), Transient>> + Send + 'static {
        self.recording(|_| std::future::ready(Err(Transient)))
    }
}

/// An attempt that fails the first time and succeeds after.
fn transient_once(attempt: usize) -> std::future::Ready<Result<(), Transient>> {
    std::future::ready(if attempt == 1 { Err(Transient) } else { Ok(()) })
}

fn secs(values: &[u64]) -> Vec<Duration> {
    values.iter().map(|&s| Duration::from_secs(s)).collect()
}

/// Adds the task `make` makes, retried by `policy`.
async fn add_retried<M, F>(decorum: &Decorum, policy: RetryPolicy, make: M) -> TaskHandle
where
    M: FnMut() -> F + Send + 'static,
    F: Future + Send + 'static,
    F::Output: TaskOutput,
{
    let adding = decorum.task(make).retry(policy).add();
    adding.await.expect("the queue accepts the task")
}

/// [`within_for`] [`SCHEDULE`]: for a wait that runs through retries.
async fn within_schedule<F: IntoFuture>(what: &str, future: F) -> F::Output {
    within_for(SCHEDULE, what, future).await
}

/// An error type that displays as `$message`. The tests tell errors apart
/// by type, as a retry predicate does, so each error needs a type of its own.
macro_rules! error_type {
    ($name:ident, $message:literal) => {
        #[derive(Debug)]
        struct $name;

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($message)
            }
        }

        impl std::error::Error for $name {}
    };
}

error_type!(Transient, "service unavailable");
error_type!(Permanent, "address rejected");
