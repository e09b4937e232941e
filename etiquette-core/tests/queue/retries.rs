//! Retries, backoff and time limits, on tokio's paused clock: every instant
//! asserted here is virtual and exact.

use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etiquette_core::{
    Builder, Decorum, Etiquette, RetryPolicy, TaskHandle, TaskOutput, TaskStatus,
};
use tokio::time::{Instant, sleep};

use crate::support::{build, release_after, within, within_for};

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

#[tokio::test(start_paused = true)]
async fn attempts_follow_the_configured_schedule_with_no_final_sleep() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(4));
    let attempts = Attempts::new();
    let handle = add_retried(
        &decorum,
        RetryPolicy::exponential(4, SECOND),
        attempts.always_failing(),
    )
    .await;

    let outcome =
        within_schedule("the outcome of a task failing 4 attempts", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert_eq!(attempts.times(), secs(&[0, 1, 3, 7]));
    assert_eq!(
        attempts.start.elapsed(),
        secs(&[7])[0],
        "a sleep followed the last attempt"
    );
    assert!(error.task_error().unwrap().is::<Transient>());
    assert!(matches!(
        handle.status(),
        TaskStatus::Failed { attempts: 4, .. }
    ));
    let stats = etiquette.stats();
    assert_eq!((stats.failed, stats.retried), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn the_default_policy_is_three_attempts_one_then_two_seconds_apart() {
    let (_etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let attempts = Attempts::new();
    let handle = decorum.task(attempts.always_failing()).add().await.unwrap();
    let outcome = within("the outcome of a task failing 3 attempts", handle.outcome()).await;
    assert!(outcome.is_err());
    assert_eq!(attempts.times(), secs(&[0, 1, 3]));
}

#[tokio::test(start_paused = true)]
async fn the_queue_wide_policy_applies_unless_a_task_overrides_it() {
    let (_etiquette, decorum) =
        build(Builder::new().retry_policy(RetryPolicy::exponential(2, 5 * SECOND)));
    let (queue_wide, own) = (Attempts::new(), Attempts::new());
    let first = decorum
        .task(queue_wide.always_failing())
        .add()
        .await
        .unwrap();
    let second = add_retried(&decorum, RetryPolicy::never(), own.always_failing()).await;
    let _ = within_schedule(
        "the outcomes of both failing tasks",
        futures_util::future::join(first.outcome(), second.outcome()),
    )
    .await;
    assert_eq!(queue_wide.times(), secs(&[0, 5]));
    assert_eq!(own.times(), secs(&[0]));
}

#[tokio::test(start_paused = true)]
async fn jitter_shortens_each_wait_within_its_fraction() {
    let etiquette = Etiquette::initiate(64).unwrap();
    let decorum = etiquette.decorum();
    let mut all = Vec::new();
    for _ in 0..50 {
        let attempts = Attempts::new();
        add_retried(
            &decorum,
            RetryPolicy::exponential(3, 4 * SECOND).jitter(0.5),
            attempts.always_failing(),
        )
        .await;
        all.push(attempts);
    }
    within_schedule(
        "the release of the queue after 50 tasks retried with jitter",
        etiquette.release(),
    )
    .await;
    let mut distinct = std::collections::BTreeSet::new();
    for attempts in all {
        let at = attempts.times();
        let (first_wait, second_wait) = (at[1] - at[0], at[2] - at[1]);
        assert!(
            (2 * SECOND..=4 * SECOND).contains(&first_wait),
            "{first_wait:?}"
        );
        assert!(
            (4 * SECOND..=8 * SECOND).contains(&second_wait),
            "{second_wait:?}"
        );
        distinct.insert(first_wait);
    }
    assert!(distinct.len() > 1, "jitter drew the same wait 50 times");
}

#[tokio::test(start_paused = true)]
async fn the_slot_is_free_during_backoff() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let timeline = Attempts::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let flaky = decorum
        .task(timeline.recording(move |attempt| {
            log.lock().unwrap().push(format!("flaky {attempt}"));
            transient_once(attempt)
        }))
        .retry(RetryPolicy::exponential(2, 10 * SECOND))
        .add()
        .await
        .unwrap();
    let log = seen.clone();
    let start = timeline.start;
    let other = decorum
        .add_task(async move {
            log.lock()
                .unwrap()
                .push(format!("other at {:?}", start.elapsed()));
        })
        .await
        .unwrap();
    within("the outcome of the other task", other.outcome())
        .await
        .unwrap();
    assert!(
        matches!(flaky.status(), TaskStatus::Retrying { attempt: 1, backoff, .. } if backoff == 10 * SECOND)
    );
    within_schedule("the outcome of the flaky task's retry", flaky.outcome())
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["flaky 1", "other at 0ns", "flaky 2"],
        "at limit 1 the other task ran while the flaky one waited"
    );
    assert_eq!(timeline.times(), secs(&[0, 10]));
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_fail_at_once() {
    let etiquette = Builder::new()
        .retry_policy(
            RetryPolicy::exponential(5, SECOND).retry_if(|error| !error.is::<Permanent>()),
        )
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let handle = etiquette
        .decorum()
        .task(attempts.recording(|_| async { Err::<(), _>(Permanent) }))
        .add()
        .await
        .unwrap();
    let outcome = within("the outcome of a permanent failure", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert_eq!(error.to_string(), "address rejected");
    assert_eq!(attempts.times(), secs(&[0]));
    assert_eq!(etiquette.stats().retried, 0);
}

#[tokio::test(start_paused = true)]
async fn panics_are_never_retried() {
    let (_etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let attempts = Attempts::new();
    let handle = decorum
        .task(attempts.recording(|_| async { panic_now() }))
        .add()
        .await
        .unwrap();
    let outcome = within("the outcome of a panicking task", handle.outcome()).await;
    assert!(outcome.unwrap_err().is_panic());
    assert_eq!(attempts.times(), secs(&[0]));
}

fn panic_now() {
    panic!("bug");
}

/// Sets its flag when dropped: shows an attempt was really stopped.
struct DropFlag(Arc<Mutex<u32>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn time_limits_cancel_attempts_and_are_retried() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let attempts = Attempts::new();
    let dropped = Arc::new(Mutex::new(0));
    let flag = dropped.clone();
    let handle = etiquette
        .decorum()
        .task(attempts.recording(move |_| {
            let guard = DropFlag(flag.clone());
            async move {
                let _guard = guard;
                sleep(60 * SECOND).await;
            }
        }))
        .retry(RetryPolicy::exponential(2, SECOND))
        .timeout(2 * SECOND)
        .add()
        .await
        .unwrap();
    let outcome = within_schedule("the outcome of a task timing out twice", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert!(error.is_timeout());
    // 2 s attempt, 1 s backoff, 2 s attempt: over at 5 s, not 60.
    assert_eq!(attempts.times(), secs(&[0, 3]));
    assert_eq!(attempts.start.elapsed(), 5 * SECOND);
    assert_eq!(
        *dropped.lock().unwrap(),
        2,
        "each timed-out attempt was dropped"
    );
    assert!(
        matches!(handle.status(), TaskStatus::TimedOut { attempts: 2, limit } if limit == 2 * SECOND)
    );
    let stats = etiquette.stats();
    assert_eq!((stats.failed, stats.timed_out, stats.retried), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn queue_wide_time_limit_applies_to_plain_tasks() {
    let etiquette = Builder::new().task_timeout(3 * SECOND).build().unwrap();
    let start = Instant::now();
    let handle = etiquette
        .decorum()
        .add_task(async { sleep(60 * SECOND).await })
        .await
        .unwrap();
    let outcome = within("the outcome of a task timing out", handle.outcome()).await;
    assert!(outcome.unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), 3 * SECOND);
    let report = release_after(&etiquette, "a task timed out").await;
    assert_eq!((report.failed, report.timed_out), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn release_waits_for_a_pending_retry_to_run() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let attempts = Attempts::new();
    add_retried(
        &etiquette.decorum(),
        RetryPolicy::exponential(3, 5 * SECOND),
        attempts.recording(transient_once),
    )
    .await;
    let report = within_schedule(
        "the release of the queue after a pending retry",
        etiquette.release(),
    )
    .await;
    assert_eq!(attempts.times(), secs(&[0, 5]));
    assert_eq!(
        (report.completed, report.retried, report.cancelled),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn release_deadline_cancels_a_task_waiting_to_retry() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let attempts = Attempts::new();
    let waiting = add_retried(
        &decorum,
        RetryPolicy::exponential(3, 30 * SECOND),
        attempts.always_failing(),
    )
    .await;
    let quick = add_retried(
        &decorum,
        RetryPolicy::exponential(3, 30 * SECOND),
        || async {},
    )
    .await;
    let report = within_schedule(
        "the release, past its 10 s deadline, of a task waiting to retry",
        etiquette.release_timeout(10 * SECOND),
    )
    .await;
    assert_eq!(attempts.start.elapsed(), 10 * SECOND);
    assert_eq!(
        attempts.times(),
        secs(&[0]),
        "no attempt after the deadline"
    );
    assert!(matches!(waiting.status(), TaskStatus::Cancelled));
    let outcome = within(
        "the outcome of the task cancelled while waiting to retry",
        waiting.outcome(),
    )
    .await;
    assert!(outcome.unwrap_err().is_cancelled());
    assert!(matches!(
        quick.status(),
        TaskStatus::Succeeded { attempts: 1 }
    ));
    assert_eq!(report.accepted, 2);
    assert_eq!(
        (report.completed, report.cancelled, report.retried),
        (1, 1, 1)
    );
    assert_eq!(
        report.completed + report.failed + report.cancelled,
        report.accepted
    );
}
