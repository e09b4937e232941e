//! Scheduling on the in-memory queue: delays and start times (on tokio's
//! paused clock, so every instant is virtual and exact), priorities, and
//! unique keys.

use std::time::{Duration, SystemTime};

use etiquette_core::{
    AddTaskError, Decorum, Etiquette, EventKind, OnFull, TaskBuilder, TaskHandle, TaskStatus,
};
use tokio::time::{Instant, sleep};

use crate::support::{Gate, receive_n, signals, within, within_for};

const MINUTE: Duration = Duration::from_secs(60);

/// A queue running one task, with a place for one more, refusing others.
fn one_slot_one_place() -> Etiquette {
    Etiquette::builder()
        .max_concurrent_tasks(1)
        .queue_capacity(1)
        .on_full(OnFull::Reject)
        .build()
        .unwrap()
}

/// A task that signals `index` when it starts; set how to add it.
fn signalling<'a>(
    decorum: &'a Decorum,
    index: usize,
    started: &tokio::sync::mpsc::UnboundedSender<usize>,
) -> TaskBuilder<'a> {
    let started = started.clone();
    decorum.task(move || {
        let started = started.clone();
        async move { started.send(index).unwrap() }
    })
}

/// Adds a task that signals `index` when it starts, after `delay`.
async fn delayed(
    decorum: &Decorum,
    delay: Duration,
    index: usize,
    started: &tokio::sync::mpsc::UnboundedSender<usize>,
) -> TaskHandle {
    let task = signalling(decorum, index, started).delay(delay);
    task.add().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_delayed_task_starts_once_its_delay_has_passed_and_not_before() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let decorum = etiquette.decorum();
    let (started, mut starts) = signals();
    let added_at = SystemTime::now();
    let begin = Instant::now();
    let task = delayed(&decorum, MINUTE, 1, &started).await;

    let TaskStatus::Scheduled { run_at } = task.status_now() else {
        panic!("a delayed task is scheduled, not {:?}", task.status_now());
    };
    let due = run_at.duration_since(added_at).unwrap();
    assert!(
        due >= MINUTE && due < MINUTE + Duration::from_secs(5),
        "{due:?}"
    );
    assert_eq!(decorum.stats().scheduled, 1);
    assert_eq!(decorum.stats().queued, 0);

    // A second short of the delay, every timer due by then has fired.
    sleep(MINUTE - Duration::from_secs(1)).await;
    assert!(starts.try_recv().is_err(), "the task started early");
    assert!(matches!(task.status_now(), TaskStatus::Scheduled { .. }));

    receive_n(&mut starts, 1, "the start of the delayed task").await;
    assert_eq!(begin.elapsed(), MINUTE, "it started late");
    within("the delayed task's outcome", task.outcome())
        .await
        .unwrap();
    assert_eq!(decorum.stats().scheduled, 0);
}

#[tokio::test(start_paused = true)]
async fn a_delayed_tasks_events_say_when_it_is_due_then_follow_its_run() {
    let etiquette = Etiquette::builder().event_buffer(16).build().unwrap();
    let decorum = etiquette.decorum();
    let (started, _starts) = signals();
    let task = delayed(&decorum, MINUTE, 1, &started).await;
    let mut events = decorum.subscribe_task_now(task.id(), None).unwrap();
    let mut kinds = Vec::new();
    within_for(2 * MINUTE, "the delayed task's events", async {
        while let Some(event) = events.next().await {
            kinds.push(event.unwrap().kind);
        }
    })
    .await;
    let TaskStatus::Succeeded { .. } = task.status_now() else {
        panic!("the task did not succeed: {:?}", task.status_now());
    };
    assert!(
        matches!(
            kinds.as_slice(),
            [
                EventKind::Scheduled { .. },
                EventKind::Started {
                    attempt: 1,
                    job: None
                },
                EventKind::Succeeded { attempts: 1 }
            ]
        ),
        "{kinds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn run_at_waits_for_its_time_and_a_past_time_runs_at_once() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let decorum = etiquette.decorum();
    let begin = Instant::now();
    let at = SystemTime::now() + MINUTE;
    let later = decorum.task(|| async {}).run_at(at).add().await.unwrap();
    assert!(
        matches!(later.status_now(), TaskStatus::Scheduled { run_at } if run_at == at),
        "{:?}",
        later.status_now()
    );
    let past = decorum
        .task(|| async {})
        .run_at(SystemTime::now() - MINUTE)
        .add()
        .await
        .unwrap();
    within(
        "the outcome of the task whose time has passed",
        past.outcome(),
    )
    .await
    .unwrap();
    assert!(begin.elapsed() < Duration::from_secs(1), "it waited");
    within_for(
        2 * MINUTE,
        "the outcome of the task due in a minute",
        later.outcome(),
    )
    .await
    .unwrap();
    // Its delay was measured on the wall clock when it was added, a moment
    // before the paused clock's reading here.
    assert!(begin.elapsed() > MINUTE - Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_task_holds_a_place_and_cancelling_it_frees_the_place_at_once() {
    let etiquette = one_slot_one_place();
    let decorum = etiquette.decorum();
    let (started, mut starts) = signals();
    let task = delayed(&decorum, MINUTE, 1, &started).await;
    assert_eq!(
        decorum.try_add_task(async {}).unwrap_err(),
        AddTaskError::Full,
        "a scheduled task holds its place"
    );
    assert!(task.cancel_now());
    assert!(matches!(task.status_now(), TaskStatus::Cancelled));
    assert_eq!(decorum.stats().scheduled, 0);
    let next = decorum.try_add_task(async {}).unwrap();
    within("the next task's outcome", next.outcome())
        .await
        .unwrap();
    sleep(2 * MINUTE).await;
    assert!(starts.try_recv().is_err(), "a cancelled scheduled task ran");
    let report = within("the release", etiquette.release()).await;
    let counts = (report.accepted, report.completed, report.cancelled);
    assert_eq!(counts, (2, 1, 1), "accepted, completed, cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_release_runs_scheduled_tasks_and_a_deadline_cancels_them() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let (started, mut starts) = signals();
    delayed(&etiquette.decorum(), MINUTE, 1, &started).await;
    let report = within_for(2 * MINUTE, "the release", etiquette.release()).await;
    assert_eq!(report.completed, 1);
    receive_n(&mut starts, 1, "the start of the scheduled task").await;

    let etiquette = Etiquette::initiate(2).unwrap();
    let task = delayed(&etiquette.decorum(), MINUTE, 2, &started).await;
    let report = within_for(
        2 * MINUTE,
        "the release with a deadline",
        etiquette.release_timeout(Duration::from_secs(10)),
    )
    .await;
    assert_eq!((report.completed, report.cancelled), (0, 1));
    assert!(matches!(task.status_now(), TaskStatus::Cancelled));
    sleep(2 * MINUTE).await;
    assert!(
        starts.try_recv().is_err(),
        "a task cancelled at the deadline ran"
    );
}

#[tokio::test]
async fn lower_priorities_start_first_then_in_the_order_they_were_added() {
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(1)
        .build()
        .unwrap();
    let decorum = etiquette.decorum();
    let gate = Gate::closed();
    let blocker = {
        let gate = gate.clone();
        decorum
            .add_task(async move { gate.pass().await })
            .await
            .unwrap()
    };
    let (started, mut starts) = signals();
    let priorities = [5, 0, -3, 0, 5, -3, 1];
    for (index, priority) in priorities.into_iter().enumerate() {
        let task = signalling(&decorum, index, &started).priority(priority);
        task.add().await.unwrap();
    }
    gate.open();
    within("the blocking task's outcome", blocker.outcome())
        .await
        .unwrap();
    let order = receive_n(&mut starts, priorities.len(), "the start of every task").await;
    assert_eq!(order, [2, 5, 1, 3, 6, 0, 4]);
}

/// Waits until a task runs: it gave its place back.
async fn first_running(decorum: &Decorum) {
    within("the first task's start", async {
        while decorum.stats().running == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// A queue running one task at a time, and a closed gate for its tasks.
fn one_slot_gated() -> (Etiquette, Decorum, Gate) {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    (etiquette, decorum, Gate::closed())
}

/// Adds a task with `key` that waits at `gate`.
async fn keyed(decorum: &Decorum, key: &str, gate: &Gate) -> Result<TaskHandle, AddTaskError> {
    let gate = gate.clone();
    decorum
        .task(move || {
            let gate = gate.clone();
            async move { gate.pass().await }
        })
        .unique_key(key)
        .add()
        .await
}

#[tokio::test]
async fn a_second_add_with_a_live_key_returns_the_live_task() {
    let (etiquette, decorum, gate) = one_slot_gated();
    let first = keyed(&decorum, "welcome:42", &gate).await.unwrap();
    assert!(!first.was_duplicate());
    // Running, then queued: the key holds in every live phase.
    let queued = keyed(&decorum, "welcome:43", &gate).await.unwrap();
    for (live, key) in [(&first, "welcome:42"), (&queued, "welcome:43")] {
        let again = keyed(&decorum, key, &gate).await.unwrap();
        assert_eq!(again.id(), live.id());
        assert!(again.was_duplicate());
    }
    assert_eq!(decorum.stats().accepted, 2, "a duplicate was accepted");

    gate.open();
    within("the first task's outcome", first.outcome())
        .await
        .unwrap();
    let after = keyed(&decorum, "welcome:42", &gate).await.unwrap();
    assert_ne!(after.id(), first.id(), "a finished task still held its key");
    assert!(!after.was_duplicate());
    let report = within("the release", etiquette.release()).await;
    assert_eq!((report.accepted, report.completed), (3, 3));
}

#[tokio::test]
async fn a_cancelled_tasks_key_is_free_at_once() {
    let (etiquette, decorum, gate) = one_slot_gated();
    let _running = keyed(&decorum, "other", &gate).await.unwrap();
    let queued = keyed(&decorum, "report", &gate).await.unwrap();
    assert!(queued.cancel_now());
    let again = keyed(&decorum, "report", &gate).await.unwrap();
    assert_ne!(again.id(), queued.id());
    assert!(!again.was_duplicate());
    gate.open();
    within("the release", etiquette.release()).await;
}

#[tokio::test]
async fn a_duplicate_is_answered_even_when_the_queue_is_full() {
    let etiquette = one_slot_one_place();
    let decorum = etiquette.decorum();
    let gate = Gate::closed();
    let _running = keyed(&decorum, "a", &gate).await.unwrap();
    // Its place is free once it runs.
    first_running(&decorum).await;
    let queued = keyed(&decorum, "b", &gate).await.unwrap();
    assert_eq!(
        decorum.try_add_task(async {}).unwrap_err(),
        AddTaskError::Full
    );
    let again = decorum.task(|| async {}).unique_key("b").try_add().unwrap();
    assert_eq!(again.id(), queued.id());
    gate.open();
    within("the release", etiquette.release()).await;
    assert_eq!(
        keyed(&decorum, "b", &gate).await.unwrap_err(),
        AddTaskError::Released,
        "a released queue answers a key's adder as any other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_concurrent_adders_of_one_key_exactly_one_adds() {
    const ADDERS: usize = 64;
    for _round in 0..20 {
        let etiquette = Etiquette::initiate(1).unwrap();
        let gate = Gate::closed();
        let adders: Vec<_> = (0..ADDERS)
            .map(|_| {
                let (decorum, gate) = (etiquette.decorum(), gate.clone());
                tokio::spawn(async move { keyed(&decorum, "once", &gate).await.unwrap() })
            })
            .collect();
        let mut handles = Vec::new();
        for adder in adders {
            handles.push(within("an adder", adder).await.unwrap());
        }
        let added = handles
            .iter()
            .filter(|handle| !handle.was_duplicate())
            .count();
        assert_eq!(added, 1);
        assert!(handles.iter().all(|handle| handle.id() == handles[0].id()));
        gate.open();
        let report = within("the release", etiquette.release()).await;
        assert_eq!(report.accepted, 1);
    }
}

/// A start time is weighed when the task is accepted, not when it was
/// prepared: an adder that waited for a place past the time runs its task
/// at once. On the real clock, the start time being wall-clock time.
#[tokio::test]
async fn a_start_time_passed_while_waiting_for_a_place_runs_the_task_at_once() {
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let decorum = etiquette.decorum();
    let gate = Gate::closed();
    let _running = keyed(&decorum, "running", &gate).await.unwrap();
    // Its place is free once it runs.
    first_running(&decorum).await;
    let queued = keyed(&decorum, "queued", &gate).await.unwrap();
    let at = SystemTime::now() + Duration::from_millis(100);
    let adding = {
        let decorum = decorum.clone();
        tokio::spawn(async move { decorum.task(|| async {}).run_at(at).add().await })
    };
    // The adder waits for a place until `at` has passed.
    while SystemTime::now() <= at {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(queued.cancel_now());
    let task = within("the adder's place", adding).await.unwrap().unwrap();
    assert!(
        !matches!(task.status_now(), TaskStatus::Scheduled { .. }),
        "a task whose time passed while its adder waited was scheduled: {:?}",
        task.status_now()
    );
    gate.open();
    within("the release", etiquette.release()).await;
}
