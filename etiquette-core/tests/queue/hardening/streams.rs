//! Per-task event streams always end, with exactly one final event: past
//! a lag, taken as the task ends, resumed at the end, or fed by a helper
//! that outlives its task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use etiquette_core::{Builder, EventKind, Lagged, RetryPolicy, TaskContext, TaskEvent, TaskHandle};
use tokio::time::sleep;

use crate::support::{BOUND, build, drain, within};

/// Publishes 1,100 progress events, more than any subscriber's live ring.
async fn chatty(context: TaskContext) {
    for step in 0..1_100_u16 {
        context.progress(f32::from(step) / 1_100.0);
    }
}

/// The items of one task's stream end with exactly one final event, its
/// own, and hold nothing of any other task.
pub(super) fn assert_ends_once(
    items: &[Result<TaskEvent, Lagged>],
    task: &TaskHandle,
    final_name: &str,
) {
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
    let stream = decorum.subscribe_task_now(first.id(), None).unwrap();
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
                .subscribe_task_now(task.id(), None)
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
            let early =
                subscribed_early.then(|| decorum.subscribe_task_now(task.id(), None).unwrap());
            within("the task", task.outcome()).await.unwrap();
            let stream =
                early.unwrap_or_else(|| decorum.subscribe_task_now(task.id(), None).unwrap());
            let items = drain("the task's stream", stream).await;
            assert_ends_once(&items, &task, "succeeded");
            let final_id = items.last().unwrap().as_ref().unwrap().id;

            let resumed = decorum
                .subscribe_task_now(task.id(), Some(final_id))
                .unwrap();
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
