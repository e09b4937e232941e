//! Task handles: status, outcome, cancel, and lookup by id.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use etiquette_core::{Builder, Decorum, Etiquette, RetryPolicy, TaskStatus};

use crate::support::{Gate, build, receive_n, release_after, signals, within};

struct SetOnDrop(Arc<AtomicBool>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[tokio::test]
async fn a_decorum_made_from_an_etiquette_adds_to_its_queue() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let borrowed = Decorum::from(&etiquette);
    let owned = Decorum::from(etiquette.clone());
    let first = borrowed.add_task(async {}).await.unwrap();
    let second = owned.add_task(async {}).await.unwrap();
    // One queue: the ids follow each other, and its release counts both.
    assert_eq!(second.id().get(), first.id().get() + 1);
    let report = release_after(&etiquette, "2 tasks").await;
    assert_eq!(report.completed, 2);
    assert!(owned.is_released() && borrowed.is_released());
}

#[tokio::test]
async fn status_follows_the_task_and_outcome_is_awaitable() {
    let (_etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let (gate, (started, mut starts)) = (Gate::closed(), signals());
    let first = decorum.add_task(gate.held_task(1, &started)).await.unwrap();
    let second = decorum.add_task(async {}).await.unwrap();
    receive_n(&mut starts, 1, "the start of the first task").await;
    assert!(matches!(
        first.status_now(),
        TaskStatus::Running { attempt: 1 }
    ));
    assert!(matches!(second.status_now(), TaskStatus::Queued));
    assert_eq!(second.id().get(), first.id().get() + 1);

    gate.open();
    within("the first task's handle", first.clone())
        .await
        .unwrap();
    within("the outcome of the second task", second.outcome())
        .await
        .unwrap();
    let status = first.status_now();
    assert_eq!((status.name(), status.attempts()), ("succeeded", 1));
    assert_eq!(first.status_now().name(), "succeeded");
    let failing = decorum
        .add_task(async { Err::<(), _>("no route to host") })
        .await
        .unwrap();
    let error = within("the failing task's handle", failing)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "no route to host");
}

#[tokio::test]
async fn cancelling_queued_and_running_tasks() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let (never, (started, mut starts)) = (Gate::closed(), signals());
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let held = never.held_task(1, &started);
    let running = decorum
        .add_task(async move {
            // Dropped with the future, when the cancel stops it.
            let _guard = guard;
            held.await;
        })
        .await
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let queued = decorum
        .add_task(async move { flag.store(true, SeqCst) })
        .await
        .unwrap();
    receive_n(
        &mut starts,
        1,
        "the start of the task to cancel while running",
    )
    .await;

    assert!(queued.cancel_now());
    assert!(
        matches!(queued.status_now(), TaskStatus::Cancelled),
        "settled at once"
    );
    assert!(running.cancel_now());
    let outcome = within(
        "the outcome of the running task cancelled",
        running.outcome(),
    )
    .await;
    assert!(outcome.unwrap_err().is_cancelled());
    assert!(dropped.load(SeqCst), "the running future was dropped");

    let report = release_after(&etiquette, "2 cancelled tasks").await;
    assert!(!ran.load(SeqCst), "a cancelled queued task never runs");
    assert_eq!(
        (report.accepted, report.cancelled, report.completed),
        (2, 2, 0)
    );
    assert!(
        !queued.cancel_now(),
        "cancelling a finished task does nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_task_waiting_to_retry() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let (attempted, mut attempts) = signals();
    let handle = etiquette
        .decorum()
        .task(move || {
            attempted.send(1).unwrap();
            async { Err::<(), _>("flaky") }
        })
        .retry(RetryPolicy::exponential(5, Duration::from_secs(60)))
        .add()
        .await
        .unwrap();
    receive_n(&mut attempts, 1, "the first attempt of the task").await;
    tokio::task::yield_now().await;
    assert!(matches!(
        handle.status_now(),
        TaskStatus::Retrying { attempt: 1, .. }
    ));
    assert!(handle.cancel_now());
    assert!(matches!(handle.status_now(), TaskStatus::Cancelled));
    let report = release_after(&etiquette, "a task cancelled while waiting to retry").await;
    assert_eq!((report.cancelled, report.retried), (1, 1));
    assert!(attempts.try_recv().is_err(), "no attempt after the cancel");
}

#[tokio::test]
async fn handles_are_found_by_id_within_the_retention() {
    let (_etiquette, decorum) = build(Builder::new().status_retention(3));
    let mut handles = Vec::new();
    for _ in 0..10 {
        handles.push(decorum.add_task(async {}).await.unwrap());
    }
    for handle in &handles {
        let what = format!("the outcome of task {}", handle.id().get());
        within(&what, handle.outcome()).await.unwrap();
    }
    let found: Vec<bool> = handles
        .iter()
        .map(|handle| decorum.handle(handle.id()).is_some())
        .collect();
    assert_eq!(found.iter().filter(|&&found| found).count(), 3, "{found:?}");
    // The newest three are kept; a handle already held keeps working.
    let newest = decorum.handle(handles[9].id()).unwrap();
    assert!(matches!(newest.status_now(), TaskStatus::Succeeded { .. }));
    assert!(matches!(
        handles[0].status_now(),
        TaskStatus::Succeeded { .. }
    ));
}

#[tokio::test]
async fn unfinished_tasks_are_always_found() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1).status_retention(0));
    let gate = Gate::closed();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let gate = gate.clone();
        ids.push(
            decorum
                .add_task(async move { gate.pass().await })
                .await
                .unwrap()
                .id(),
        );
    }
    assert!(ids.iter().all(|&id| decorum.handle(id).is_some()));
    gate.open();
    release_after(&etiquette, "5 tasks").await;
    assert!(ids.iter().all(|&id| decorum.handle(id).is_none()));
}
