//! Regression tests for the hardened core: user code outside a task's
//! future cannot take a worker down, a retry that cannot be scheduled is
//! still accounted for, per-task event streams always end, extreme settings
//! build, places are given back and counted where the documentation says,
//! and tasks start in id order. Every wait is bounded, so a broken queue
//! fails in seconds instead of hanging.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etiquette_core::{
    AddTaskError, BuildError, Builder, Decorum, Etiquette, EventKind, Lagged, RetryPolicy,
    TaskBuilder, TaskContext, TaskEvent, TaskHandle, TaskStatus,
};
use tokio::time::sleep;

use crate::support::{
    BOUND, Gate, InFlight, build, drain, hold_a_worker, receive_n, signals, within,
};

/// Polls `condition` until it holds, a millisecond apart, within the bound.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Adds `limit` tasks held at a gate, checks that all of them run at once,
/// then lets them finish: the queue still has its `limit` slots.
async fn still_runs(decorum: &Decorum, limit: usize) {
    let (gate, in_flight) = (Gate::closed(), InFlight::default());
    let (entered, mut entries) = signals();
    let mut handles = Vec::new();
    for index in 0..limit {
        let (gate, in_flight, entered) = (gate.clone(), in_flight.clone(), entered.clone());
        let task = async move {
            let _inside = in_flight.enter();
            entered.send(index).unwrap();
            gate.pass().await;
        };
        let handle = within("a place for a follow-up task", decorum.add_task(task)).await;
        handles.push(handle.expect("the queue accepts a follow-up task"));
    }
    receive_n(&mut entries, limit, "every follow-up task to start").await;
    assert_eq!(in_flight.now(), limit, "{limit} tasks run at once");
    gate.open();
    for handle in handles {
        within("a follow-up task's outcome", handle.outcome())
            .await
            .expect("the follow-up task succeeds");
    }
}

// ---------------------------------------------------------------------------
// User code outside the task's future is isolated.
// ---------------------------------------------------------------------------

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
            matches!(handle.status(), TaskStatus::Failed { ref error, .. } if error.is_panic()),
            "limit {limit}: {}",
            handle.status().name()
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
        assert!(handle.cancel(), "the task was running");
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

// ---------------------------------------------------------------------------
// A retry that cannot be scheduled; a runtime without a timer.
// ---------------------------------------------------------------------------

fn unschedulable() -> RetryPolicy {
    RetryPolicy::exponential(u32::MAX, Duration::MAX)
        .max_backoff(Duration::MAX)
        .jitter(0.5)
}

#[test]
fn the_longest_backoffs_saturate_instead_of_panicking() {
    let retries = [1, 2, 64, u32::MAX];
    let units = [0.0, 0.5, 0.999, f64::NAN];
    for (policy, cap) in [
        (unschedulable(), Duration::MAX),
        (
            unschedulable().max_backoff(Duration::from_secs(3600)),
            Duration::from_secs(3600),
        ),
    ] {
        for retry in retries {
            for unit in units {
                let delay = policy.delay_before_retry(retry, unit);
                // At most the cap, and jitter of 0.5 shortens it by half at
                // most.
                assert!(
                    delay <= cap && delay >= cap / 2,
                    "retry {retry}, unit {unit}: {delay:?}"
                );
            }
            assert_eq!(
                policy.delay_before_retry(retry, 0.0),
                cap,
                "no jitter drawn"
            );
        }
    }
}

/// Both with and without jitter (without, the full `Duration::MAX` wait
/// once overflowed as it was computed), the task fails, waits to retry on a
/// timer that never fires in time, and the release deadline cancels it.
#[tokio::test(start_paused = true)]
async fn tasks_with_an_endless_backoff_wait_to_retry_and_are_cancelled_at_the_deadline() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let mut handles = Vec::new();
    for policy in [unschedulable(), unschedulable().jitter(0.0)] {
        let handle = decorum
            .task(|| async { Err::<(), _>("down") })
            .retry(policy)
            .add()
            .await
            .unwrap();
        handles.push(handle);
    }
    until("both tasks to wait for their retry", || {
        handles
            .iter()
            .all(|handle| matches!(handle.status(), TaskStatus::Retrying { attempt: 1, .. }))
    })
    .await;

    let report = within(
        "release_timeout(1 s)",
        etiquette.release_timeout(Duration::from_secs(1)),
    )
    .await;
    for handle in &handles {
        assert!(matches!(handle.status(), TaskStatus::Cancelled));
        let outcome = within("the outcome", handle.outcome()).await;
        assert!(outcome.unwrap_err().is_cancelled());
    }
    assert_eq!(etiquette.stats().running, 0);
    assert_eq!(
        (report.accepted, report.retried, report.cancelled),
        (2, 2, 2),
        "{report}"
    );
}

#[test]
fn a_runtime_without_a_timer_is_refused_at_build() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let built = runtime.block_on(async { Etiquette::builder().build() });
    let error = built.expect_err("a queue without timers is refused");
    assert_eq!(error, BuildError::NoTimer);
    assert!(error.to_string().contains("enable_time"), "{error}");
    let built = runtime.block_on(async { Etiquette::initiate(1) });
    assert_eq!(built.unwrap_err(), BuildError::NoTimer);
}

// ---------------------------------------------------------------------------
// Event streams that end.
// ---------------------------------------------------------------------------

/// Publishes 1,100 progress events, more than any subscriber's live ring.
async fn chatty(context: TaskContext) {
    for step in 0..1_100_u16 {
        context.progress(f32::from(step) / 1_100.0);
    }
}

/// The items of one task's stream end with exactly one final event, its
/// own, and hold nothing of any other task.
fn assert_ends_once(items: &[Result<TaskEvent, Lagged>], task: &TaskHandle, final_name: &str) {
    let events: Vec<&TaskEvent> = items.iter().filter_map(|item| item.as_ref().ok()).collect();
    assert!(events.iter().all(|event| event.task == task.id()));
    let finals = events.iter().filter(|event| event.kind.is_final()).count();
    assert_eq!(finals, 1, "exactly one final event: {items:?}");
    let last = items.last().expect("the stream is not empty");
    let last = last.as_ref().expect("the stream ends with an event");
    assert_eq!(last.kind.name(), final_name, "{items:?}");
}

/// A task floods its own subscriber past its ring, then a second task's
/// flood pushes the first one's final event out of it, all before the
/// subscriber reads a thing.
async fn a_subscriber_lagging_past_the_final_event_still_sees_it_once(buffer: usize) {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1).event_buffer(buffer));
    let first = decorum.task_with_context(chatty).add().await.unwrap();
    let stream = decorum.subscribe_task(first.id(), None).unwrap();
    let second = decorum.task_with_context(chatty).add().await.unwrap();
    within("the first task", first.outcome()).await.unwrap();
    within("the second task", second.outcome()).await.unwrap();

    let items = drain("the lagging task stream", stream).await;
    assert_ends_once(&items, &first, "succeeded");
    assert!(
        items.iter().any(Result::is_err),
        "the subscriber was told it lagged"
    );
    within("the release", etiquette.release()).await;
}

#[tokio::test(start_paused = true)]
async fn a_task_stream_lagging_past_its_final_event_ends_without_an_event_buffer() {
    a_subscriber_lagging_past_the_final_event_still_sees_it_once(0).await;
}

#[tokio::test(start_paused = true)]
async fn a_task_stream_lagging_past_its_final_event_ends_with_an_event_buffer() {
    a_subscriber_lagging_past_the_final_event_still_sees_it_once(64).await;
}

/// Spins until `condition` holds, then, if it takes a while, yields the
/// thread between looks: a blocking wait, for the threads of the race
/// below, bounded like the others.
fn spin_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + BOUND;
    let mut looks = 0_u32;
    while !condition() {
        looks = looks.saturating_add(1);
        if looks < 1_000 {
            std::hint::spin_loop();
            continue;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited more than {BOUND:?} for {what}"
        );
        std::thread::yield_now();
    }
}

/// Spins `pauses` times: a sliver of delay, shorter than any sleep.
fn pause(pauses: u32) {
    for _ in 0..pauses {
        std::hint::spin_loop();
    }
}

/// The test's thread and a worker play ping-pong: the test lets one task
/// end, sees it ending and subscribes to it at once. One side or the other
/// first waits a sliver, varying over the rounds, so that the subscription
/// lands on every step of the task's end. Without an event buffer, the
/// final event is published only if someone listens: a subscription
/// arriving as the task settles must still get it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_stream_taken_as_the_task_ends_ends_with_one_final_event() {
    const BATCH: u32 = 100;
    const BATCHES: u32 = 100;
    // Slivers from -SWEEP to SWEEP steps of 4 pauses: negative delays the
    // subscriber, positive the task.
    const SWEEP: i64 = 64;
    let (etiquette, decorum) = build(
        Builder::new()
            .max_concurrent_tasks(1)
            .queue_capacity(BATCH as usize),
    );
    let sliver = |round: u32| i64::from(round) % (2 * SWEEP + 1) - SWEEP;
    let pauses = |sliver: i64| u32::try_from(sliver.max(0) * 4).unwrap();
    for batch in 0..BATCHES {
        // The task allowed to end, and the last task ending.
        let (turn, ending) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let mut tasks = Vec::new();
        for index in 1..=BATCH {
            let (turn, ending) = (turn.clone(), ending.clone());
            let delay = pauses(sliver(batch * BATCH + index));
            let task = async move {
                spin_until("the task's turn", || turn.load(SeqCst) >= index);
                ending.store(index, SeqCst);
                pause(delay);
            };
            tasks.push(decorum.try_add_task(task).expect("room for the batch"));
        }
        let mut streams = Vec::new();
        for (index, task) in (1..).zip(&tasks) {
            turn.store(index, SeqCst);
            spin_until("the task to end", || ending.load(SeqCst) >= index);
            pause(pauses(-sliver(batch * BATCH + index)));
            let stream = decorum
                .subscribe_task(task.id(), None)
                .expect("a just finished task is found");
            streams.push(stream);
        }
        for (task, stream) in tasks.iter().zip(streams) {
            let what = format!("the stream of task {} to end", task.id());
            assert_ends_once(&drain(&what, stream).await, task, "succeeded");
        }
    }
    within("the release", etiquette.release()).await;
}

#[tokio::test(start_paused = true)]
async fn resuming_a_finished_task_at_its_final_event_replays_nothing() {
    for buffer in [0, 64] {
        for subscribed_early in [false, true] {
            let case = format!("buffer {buffer}, subscribed early: {subscribed_early}");
            let (etiquette, decorum) = build(Builder::new().event_buffer(buffer));
            let task = decorum.add_task(async {}).await.unwrap();
            let early = subscribed_early.then(|| decorum.subscribe_task(task.id(), None).unwrap());
            within("the task", task.outcome()).await.unwrap();
            let stream = early.unwrap_or_else(|| decorum.subscribe_task(task.id(), None).unwrap());
            let items = drain("the task's stream", stream).await;
            assert_ends_once(&items, &task, "succeeded");
            let final_id = items.last().unwrap().as_ref().unwrap().id;

            let resumed = decorum.subscribe_task(task.id(), Some(final_id)).unwrap();
            assert_eq!(
                drain("the resumed stream", resumed).await,
                [],
                "{case}: final event {final_id} replayed"
            );
            within("the release", etiquette.release()).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn progress_from_a_helper_outliving_its_timed_out_task_is_never_delivered() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1).event_buffer(256));
    let all = decorum.subscribe(None);
    let (helpers, mut helper) = tokio::sync::mpsc::unbounded_channel();
    let task = decorum
        .task_with_context(move |context| {
            let helpers = helpers.clone();
            async move {
                // Keeps a clone of the context, reporting every 100 ms for
                // 3 s, long after the task's 1 s limit.
                let reporter = tokio::spawn(async move {
                    for step in 1..=30_u8 {
                        sleep(Duration::from_millis(100)).await;
                        context.progress(f32::from(step) / 30.0);
                    }
                });
                helpers.send(reporter).unwrap();
                std::future::pending::<()>().await;
            }
        })
        .retry(RetryPolicy::never())
        .timeout(Duration::from_secs(1))
        .add()
        .await
        .unwrap();
    let error = within("the task's time-out", task.outcome())
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    let reporter = within("the helper's handle", helper.recv()).await.unwrap();
    within("the helper's last report", reporter).await.unwrap();
    etiquette.close_event_streams();

    let items = drain("the queue's stream", all).await;
    let of_task: Vec<EventKind> = items
        .into_iter()
        .map(|item| item.expect("no lag"))
        .filter(|event| event.task == task.id())
        .map(|event| event.kind)
        .collect();
    let final_at = of_task
        .iter()
        .position(EventKind::is_final)
        .expect("the task's final event");
    assert!(
        matches!(of_task[final_at], EventKind::TimedOut { attempts: 1 }),
        "{of_task:?}"
    );
    assert_eq!(
        &of_task[final_at + 1..],
        [],
        "events of the task followed its final event"
    );
    let progress = of_task
        .iter()
        .filter(|kind| matches!(kind, EventKind::Progress { .. }))
        .count();
    assert!(
        (9..=10).contains(&progress),
        "the reports made before the time-out were delivered: {progress}"
    );
    within("the release", etiquette.release()).await;
}

// ---------------------------------------------------------------------------
// Extreme settings.
// ---------------------------------------------------------------------------

async fn an_event_buffer_of(buffer: usize) {
    let etiquette = Builder::new()
        .event_buffer(buffer)
        .build()
        .expect("any event buffer size builds");
    let decorum = etiquette.decorum();
    let live = decorum.subscribe(None);
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(decorum.add_task(async {}).await.unwrap());
    }
    for task in &tasks {
        within("a task", task.outcome()).await.unwrap();
    }
    let report = within("the release", etiquette.release()).await;
    assert_eq!(report.completed, 3);

    let ids = |items: Vec<Result<TaskEvent, Lagged>>| -> Vec<u64> {
        items
            .into_iter()
            .map(|item| item.expect("no lag").id)
            .collect()
    };
    let every: Vec<u64> = (1..=9).collect();
    assert_eq!(ids(drain("the live stream", live).await), every);
    let replayed = drain("the replay", decorum.subscribe(None)).await;
    assert_eq!(ids(replayed), every);
    let resumed = drain("the resumed replay", decorum.subscribe(Some(4))).await;
    assert_eq!(ids(resumed), every[4..]);
    let one = drain(
        "one task's replay",
        decorum.subscribe_task(tasks[1].id(), None).unwrap(),
    )
    .await;
    assert_ends_once(&one, &tasks[1], "succeeded");
    assert_eq!(one.len(), 3, "queued, started, succeeded: {one:?}");
}

#[tokio::test]
async fn an_event_buffer_of_usize_max_builds_and_works() {
    an_event_buffer_of(usize::MAX).await;
}

#[tokio::test]
async fn an_event_buffer_of_a_trillion_builds_and_works() {
    an_event_buffer_of(1 << 40).await;
}

#[tokio::test]
async fn a_limit_of_u32_max_builds_at_once_and_runs_200_tasks_together() {
    let building = std::time::Instant::now();
    let etiquette = Builder::new()
        .max_concurrent_tasks(u32::MAX as usize)
        .build()
        .expect("the largest limit builds");
    assert!(
        building.elapsed() < Duration::from_secs(2),
        "building took {:?}",
        building.elapsed()
    );
    still_runs(&etiquette.decorum(), 200).await;
    let report = within("the release", etiquette.release()).await;
    assert_eq!(report.completed, 200);
    assert_eq!(etiquette.stats().running, 0);
}

#[tokio::test]
async fn idle_workers_retire_and_a_later_burst_still_runs_at_the_full_limit() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(64));
    for _burst in 0..3 {
        still_runs(&decorum, 64).await;
        // Lets the idle workers find the line empty and park or retire;
        // whichever they did, the next burst must reach the limit.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    let report = within("the release", etiquette.release()).await;
    assert_eq!(report.completed, 3 * 64);
}

// ---------------------------------------------------------------------------
// Bounds.
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn cancelling_a_queued_task_frees_its_place_at_once() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1).queue_capacity(1));
    let gate = Gate::closed();
    let running = hold_a_worker(&decorum, &gate).await;
    let queued = decorum.try_add_task(async {}).expect("one place");
    assert_eq!(
        decorum.try_add_task(async {}).unwrap_err(),
        AddTaskError::Full
    );

    assert!(queued.cancel());
    assert!(matches!(queued.status(), TaskStatus::Cancelled));
    let late = decorum
        .try_add_task(async {})
        .expect("the cancelled task's place is free at once");
    assert_eq!(etiquette.stats().queued, 1, "only the late task waits");

    gate.open();
    within("the running task", running.outcome()).await.unwrap();
    within("the late task", late.outcome()).await.unwrap();
    let report = within("the release", etiquette.release()).await;
    assert_eq!(
        (report.accepted, report.completed, report.cancelled),
        (3, 2, 1),
        "{report}"
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_waiting_to_retry_hold_places_within_the_documented_bound() {
    const LIMIT: usize = 2;
    const CAPACITY: usize = 2;
    // Long beside the 1 ms steps between checks, short within the bound.
    const BACKOFF: Duration = Duration::from_secs(2);
    let (etiquette, decorum) = build(
        Builder::new()
            .max_concurrent_tasks(LIMIT)
            .queue_capacity(CAPACITY),
    );
    let (gate, in_flight) = (Gate::closed(), InFlight::default());
    // Checks the bound, and that intake is closed while the waiting tasks
    // fill the capacity; returns queued + retrying.
    let check = || {
        let stats = etiquette.stats();
        let waiting = stats.queued + stats.retrying;
        assert!(waiting <= CAPACITY + LIMIT, "{stats:?}");
        if waiting >= CAPACITY {
            assert_eq!(
                decorum.try_add_task(async {}).unwrap_err(),
                AddTaskError::Full,
                "{stats:?}"
            );
        }
        waiting
    };
    let failing = || {
        let (gate, in_flight) = (gate.clone(), in_flight.clone());
        decorum
            .task(move || {
                let (gate, in_flight) = (gate.clone(), in_flight.clone());
                async move {
                    let _inside = in_flight.enter();
                    gate.pass().await;
                    Err::<(), _>("always down")
                }
            })
            .retry(RetryPolicy::exponential(2, BACKOFF))
            .try_add()
            .expect("a place is free")
    };

    // Two running at the gate, two queued behind them: the queue is full.
    let mut tasks = vec![failing(), failing()];
    until("two tasks running", || in_flight.now() == LIMIT).await;
    assert_eq!(check(), 0);
    tasks.extend([failing(), failing()]);
    assert_eq!(check(), CAPACITY);

    // All four fail and wait to retry: two of them on credit.
    gate.open();
    until("four tasks waiting to retry", || {
        check();
        etiquette.stats().retrying == 4
    })
    .await;
    assert_eq!(check(), CAPACITY + LIMIT);

    // Their second attempts fail for good.
    within("every task to settle", async {
        for task in &tasks {
            loop {
                check();
                let finished = task.status().is_finished();
                if finished {
                    break;
                }
                sleep(Duration::from_millis(1)).await;
            }
        }
    })
    .await;
    for task in &tasks {
        assert!(
            matches!(task.status(), TaskStatus::Failed { attempts: 2, .. }),
            "{:?}",
            task.status()
        );
    }
    assert_eq!(check(), 0);

    // The capacity is whole again, no more, no less.
    let mut again = Vec::new();
    for _ in 0..CAPACITY {
        again.push(decorum.try_add_task(async {}).expect("a place is free"));
    }
    assert_eq!(
        decorum.try_add_task(async {}).unwrap_err(),
        AddTaskError::Full
    );
    for task in again {
        within("a later task", task.outcome()).await.unwrap();
    }
    let report = within("the release", etiquette.release()).await;
    assert_eq!((report.failed, report.retried), (4, 4), "{report}");
}

// ---------------------------------------------------------------------------
// Start order.
// ---------------------------------------------------------------------------

/// Four producers on threads of their own, released together, add tasks
/// to a queue whose one worker is held at a gate; returns the ids of those
/// tasks in the order they started.
async fn start_order_of_tasks_added_concurrently() -> Vec<u64> {
    const PRODUCERS: usize = 4;
    const EACH: usize = 2_500;
    let (etiquette, decorum) = build(
        Builder::new()
            .max_concurrent_tasks(1)
            .queue_capacity(PRODUCERS * EACH),
    );
    let gate = Gate::closed();
    let blocker = hold_a_worker(&decorum, &gate).await;

    let order = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(std::sync::Barrier::new(PRODUCERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (decorum, order, ready) = (decorum.clone(), order.clone(), ready.clone());
            tokio::task::spawn_blocking(move || {
                ready.wait();
                for _ in 0..EACH {
                    let order = order.clone();
                    decorum
                        .task_with_context(move |context| {
                            order.lock().unwrap().push(context.id().get());
                            std::future::ready(())
                        })
                        .try_add()
                        .expect("room for every task");
                }
            })
        })
        .collect();
    for producer in producers {
        within("a producer", producer).await.unwrap();
    }
    gate.open();
    within("the gate task", blocker.outcome()).await.unwrap();
    let report = within("the release", etiquette.release()).await;
    assert_eq!(report.completed, (PRODUCERS * EACH + 1) as u64);
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), PRODUCERS * EACH);
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_added_concurrently_start_in_id_order() {
    for round in 0..3 {
        let order = start_order_of_tasks_added_concurrently().await;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        let first_out_of_order = order.iter().zip(&sorted).position(|(a, b)| a != b);
        assert_eq!(
            first_out_of_order, None,
            "round {round}: tasks started out of id order"
        );
    }
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
