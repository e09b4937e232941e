//! Places are given back and counted where the documentation says: a
//! cancelled queued task frees its place at once, tasks waiting to retry
//! hold places within the documented bound.

use std::time::Duration;

use etiquette_core::{AddTaskError, Builder, RetryPolicy, TaskStatus};
use tokio::time::sleep;

use super::until;
use crate::support::{Gate, InFlight, build, hold_a_worker, within};

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

    assert!(queued.cancel_now());
    assert!(matches!(queued.status_now(), TaskStatus::Cancelled));
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
                let finished = task.status_now().is_finished();
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
            matches!(task.status_now(), TaskStatus::Failed { attempts: 2, .. }),
            "{:?}",
            task.status_now()
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
