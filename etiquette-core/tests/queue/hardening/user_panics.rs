//! User code outside a task's future that panics (a retry factory or
//! predicate, a future or a capture dropped, an error's `Display` or
//! `Drop`) fails that task, or nobody: never the worker.

use std::fmt;
use std::time::Duration;

use etiquette_core::{
    Builder, Decorum, Etiquette, RetryPolicy, TaskBuilder, TaskHandle, TaskStatus,
};

use super::still_runs;
use crate::support::{build, receive_n, signals, within};

/// Panics when dropped, unless the thread is already unwinding (a second
/// panic would abort the whole test binary).
struct PanicOnDrop(&'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct UnprintableError;

impl fmt::Display for UnprintableError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("the error's Display broke")
    }
}

impl std::error::Error for UnprintableError {}

/// At limits 1 and 2: the task `add` adds, whose user code panics somewhere
/// outside its future's `poll`, fails as panicked with `message`, is
/// counted so, and afterwards the queue still runs `limit` tasks at once.
async fn user_panic_is_the_tasks_own(message: &str, add: impl AsyncFn(&Decorum) -> TaskHandle) {
    for limit in [1, 2] {
        let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(limit));
        let handle = add(&decorum).await;
        let error = within("the panicking task's outcome", handle.outcome())
            .await
            .expect_err("the task does not succeed");
        // Not printed unless it is a panic: the error's own `Display` may
        // be the user code that panics.
        assert!(
            error.is_panic(),
            "limit {limit}: reported as an error: {}, a time-out: {}, cancelled: {}",
            error.task_error().is_some(),
            error.is_timeout(),
            error.is_cancelled()
        );
        assert!(error.to_string().contains(message), "{error}");
        assert!(
            matches!(handle.status_now(), TaskStatus::Failed { ref error, .. } if error.is_panic()),
            "limit {limit}: {}",
            handle.status_now().name()
        );

        still_runs(&decorum, limit).await;

        let report = within("the release", etiquette.release()).await;
        let limit = limit as u64;
        assert_eq!(report.accepted, 1 + limit, "{report}");
        assert_eq!(
            (report.completed, report.failed, report.panicked),
            (limit, 1, 1),
            "{report}"
        );
        assert_eq!((report.timed_out, report.cancelled), (0, 0), "{report}");
    }
}

/// [`user_panic_is_the_tasks_own`] for the task `task` describes, added as
/// it is: most cases differ only in what they build.
async fn user_panic_in_a_built_task_is_its_own(
    message: &str,
    task: impl Fn(&Decorum) -> TaskBuilder<'_>,
) {
    user_panic_is_the_tasks_own(message, async |decorum| {
        let adding = task(decorum).add();
        adding.await.expect("the queue accepts the task")
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_factory_panicking_on_its_first_call_fails_the_task_not_the_worker() {
    user_panic_in_a_built_task_is_its_own("the factory broke", |decorum| {
        let mut calls = 0;
        decorum
            .task(move || {
                calls += 1;
                assert!(calls > 1, "the factory broke");
                std::future::ready(())
            })
            .retry(RetryPolicy::exponential(3, Duration::from_millis(1)))
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_retry_predicate_fails_the_task_not_the_worker() {
    user_panic_in_a_built_task_is_its_own("the predicate broke", |decorum| {
        decorum.task(|| async { Err::<(), _>("transient") }).retry(
            RetryPolicy::exponential(3, Duration::from_millis(1))
                .retry_if(|_| panic!("the predicate broke")),
        )
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_future_panicking_as_it_is_dropped_for_its_time_limit_fails_the_task() {
    user_panic_in_a_built_task_is_its_own("dropped at its time limit", |decorum| {
        decorum
            .task(|| async {
                let _guard = PanicOnDrop("dropped at its time limit");
                std::future::pending::<()>().await;
            })
            .retry(RetryPolicy::never())
            .timeout(Duration::from_secs(1))
    })
    .await;
}

/// The cancel is asked for first, but dropping the cancelled attempt runs
/// the task's code, and its panic is what the task is reported for: failed
/// as panicked, not cancelled.
#[tokio::test(start_paused = true)]
async fn a_future_panicking_as_it_is_dropped_for_a_cancel_is_reported_panicked() {
    user_panic_is_the_tasks_own("dropped by its cancel", async |decorum| {
        let (started, mut starts) = signals();
        let handle = decorum
            .add_task(async move {
                let _guard = PanicOnDrop("dropped by its cancel");
                started.send(0).unwrap();
                std::future::pending::<()>().await;
            })
            .await
            .unwrap();
        receive_n(&mut starts, 1, "the task to start").await;
        assert!(handle.cancel_now(), "the task was running");
        handle
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn an_error_whose_display_panics_fails_the_task_as_panicked() {
    user_panic_is_the_tasks_own("the error's Display broke", async |decorum| {
        let adding = decorum.add_task(async { Err::<(), _>(UnprintableError) });
        adding.await.expect("the queue accepts the task")
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_factory_whose_capture_panics_on_drop_fails_the_task_as_panicked() {
    user_panic_in_a_built_task_is_its_own("the factory's capture broke", |decorum| {
        let capture = PanicOnDrop("the factory's capture broke");
        decorum.task(move || {
            let _kept = &capture;
            std::future::ready(())
        })
    })
    .await;
}

/// An error whose destructor panics.
#[derive(Debug)]
struct BrokenDrop;

impl fmt::Display for BrokenDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an error that cannot be dropped")
    }
}

impl std::error::Error for BrokenDrop {}

impl Drop for BrokenDrop {
    fn drop(&mut self) {
        panic!("the error's Drop broke");
    }
}

/// The last copy of a task's error may be dropped anywhere: by a worker
/// retrying, or by the registry forgetting the task while another task is
/// added. Its destructor's panic is logged there, never unwound into the
/// worker or the adder.
#[tokio::test(start_paused = true)]
async fn an_error_whose_drop_panics_unwinds_into_nobody() {
    let (etiquette, decorum) = build(
        Etiquette::builder()
            .max_concurrent_tasks(1)
            .status_retention(0),
    );
    for _ in 0..200 {
        let failing = within(
            "a place for a task failing with an unbreakable error",
            decorum.add_task(async { Err::<(), _>(BrokenDrop) }),
        )
        .await;
        drop(failing.expect("the queue accepts the task"));
        let retried = within(
            "a place for a retried task failing with it",
            decorum
                .task(|| async { Err::<(), _>(BrokenDrop) })
                .retry(RetryPolicy::exponential(2, Duration::from_millis(1)))
                .add(),
        )
        .await;
        drop(retried.expect("the queue accepts the retried task"));
    }
    let last = within("a place for a last task", decorum.add_task(async {}))
        .await
        .expect("the queue accepts a task after 400 broken errors");
    within("the last task's outcome", last.outcome())
        .await
        .expect("the last task succeeds: the worker survived");
    let report = within("the release", etiquette.release()).await;
    assert_eq!(
        (
            report.accepted,
            report.failed,
            report.completed,
            report.panicked
        ),
        (401, 400, 1, 0)
    );
}
