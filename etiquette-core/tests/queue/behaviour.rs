//! The queue's behaviour, written once against any executor: each function
//! takes a `Builder` already pointed at the executor under test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etiquette_core::{AddTaskError, Builder, OnFull};
use futures_util::FutureExt as _;

use crate::support::{
    Gate, InFlight, build, hold_a_worker, receive_n, release_after, signals, within, yield_now,
};

const TASKS: usize = 10_000;
/// Only reached by tasks that block forever, so its length never decides an
/// outcome; it is kept short to keep the suite fast.
const DEADLINE: Duration = Duration::from_millis(20);

async fn bound_holds_exactly(builder: Builder, limit: usize) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(limit).queue_capacity(TASKS));
    let (gate, in_flight) = (Gate::closed(), InFlight::default());
    let (started, mut starts) = signals();
    for index in 0..TASKS {
        let (gate, in_flight, started) = (gate.clone(), in_flight.clone(), started.clone());
        decorum
            .add_task(async move {
                let _running = in_flight.enter();
                started.send(index).unwrap();
                gate.pass().await;
                yield_now().await;
            })
            .await
            .unwrap();
    }
    // Every slot is taken by a task stuck at the gate: exactly `limit` run.
    receive_n(
        &mut starts,
        limit,
        &format!("the start of the first {limit} tasks"),
    )
    .await;
    assert_eq!(in_flight.now(), limit);
    let stats = decorum.stats();
    assert_eq!(stats.running, limit as u64);
    assert_eq!(stats.queued, TASKS - limit);

    gate.open();
    let report = within(
        &format!("the release of the queue after {TASKS} tasks at limit {limit}"),
        etiquette.release(),
    )
    .await;
    assert_eq!(report.completed, TASKS as u64);
    assert_eq!(in_flight.max(), limit, "the bound was exceeded");
    assert_eq!(in_flight.now(), 0);
}

pub(crate) async fn bound_holds_at_limit_1(builder: Builder) {
    bound_holds_exactly(builder, 1).await;
}

pub(crate) async fn bound_holds_at_limit_16(builder: Builder) {
    bound_holds_exactly(builder, 16).await;
}

pub(crate) async fn bound_holds_at_limit_1024(builder: Builder) {
    bound_holds_exactly(builder, 1024).await;
}

pub(crate) async fn tasks_start_in_fifo_order(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(1));
    let gate = Gate::closed();
    let order = Arc::new(Mutex::new(Vec::new()));
    for index in 0..200 {
        let (gate, order) = (gate.clone(), order.clone());
        decorum
            .add_task(async move {
                order.lock().unwrap().push(index);
                gate.pass().await;
            })
            .await
            .unwrap();
    }
    gate.open();
    release_after(&etiquette, "200 tasks").await;
    assert_eq!(*order.lock().unwrap(), (0..200).collect::<Vec<_>>());
}

pub(crate) async fn full_queue_applies_backpressure(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(1).queue_capacity(2));
    let gate = Gate::closed();
    let (started, mut starts) = signals();
    let blocked = |index: usize| gate.held_task(index, &started);
    decorum.add_task(blocked(0)).await.unwrap();
    receive_n(&mut starts, 1, "the start of task 0").await;
    // Task 0 handed its place back when it started: both fit.
    within("places in the queue for tasks 1 and 2", async {
        decorum.add_task(blocked(1)).await.unwrap();
        decorum.add_task(blocked(2)).await.unwrap();
    })
    .await;
    assert_eq!(decorum.stats().queued, 2);

    assert_eq!(
        decorum.try_add_task(blocked(3)).err(),
        Some(AddTaskError::Full)
    );
    let mut waiting = Box::pin(decorum.add_task(blocked(3)));
    assert!(
        (&mut waiting).now_or_never().is_none(),
        "add_task returned although the queue is full"
    );

    gate.open();
    within("room in the full queue for task 3", waiting)
        .await
        .unwrap();
    let report = release_after(&etiquette, "4 tasks").await;
    assert_eq!(report.accepted, 4, "the refused try_add_task was counted");
    assert_eq!(report.completed, 4);
    let mut order = receive_n(&mut starts, 3, "the start of tasks 1, 2 and 3").await;
    order.sort_unstable();
    assert_eq!(order, [1, 2, 3]);
}

pub(crate) async fn reject_policy_fails_fast(builder: Builder) {
    let (etiquette, decorum) = build(
        builder
            .max_concurrent_tasks(1)
            .queue_capacity(1)
            .on_full(OnFull::Reject),
    );
    let gate = Gate::closed();
    hold_a_worker(&decorum, &gate).await;
    let g = gate.clone();
    decorum
        .add_task(async move { g.pass().await })
        .await
        .unwrap();
    assert_eq!(
        decorum.add_task(async {}).await.err(),
        Some(AddTaskError::Full)
    );
    gate.open();
    let report = release_after(&etiquette, "2 tasks").await;
    assert_eq!(report.completed, 2);
}

pub(crate) async fn nothing_is_accepted_after_release(builder: Builder) {
    let (etiquette, decorum) = build(builder);
    assert!(!decorum.is_released());
    let report = within("the release of an empty queue", etiquette.release()).await;
    assert_eq!(report.accepted, 0);
    assert!(decorum.is_released() && etiquette.is_released());
    assert_eq!(
        decorum.add_task(async {}).await.err(),
        Some(AddTaskError::Released)
    );
    assert_eq!(
        decorum.try_add_task(async {}).err(),
        Some(AddTaskError::Released)
    );
    assert_eq!(etiquette.stats().accepted, 0);
}

pub(crate) async fn adder_waiting_for_room_is_told_of_release(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(1).queue_capacity(1));
    let gate = Gate::closed();
    hold_a_worker(&decorum, &gate).await;
    let g = gate.clone();
    // The first task handed its place back when it started.
    within(
        "the place given back by the first task",
        decorum.add_task(async move { g.pass().await }),
    )
    .await
    .unwrap();
    let mut waiting = Box::pin(decorum.add_task(async {}));
    assert!((&mut waiting).now_or_never().is_none());
    assert_eq!(etiquette.stats().adds_waiting, 1, "the wait is seen");

    let mut release = Box::pin(etiquette.release());
    assert!(
        (&mut release).now_or_never().is_none(),
        "tasks are still blocked"
    );
    assert_eq!(
        within("the refusal of the adder waiting for room", waiting)
            .await
            .err(),
        Some(AddTaskError::Released)
    );
    assert_eq!(
        etiquette.stats().adds_waiting,
        0,
        "refused, it waits no more"
    );
    gate.open();
    let report = within("the release of the queue after 2 tasks", release).await;
    assert_eq!((report.accepted, report.completed), (2, 2));
}

fn explode(index: usize) {
    panic!("task {index} panics");
}

pub(crate) async fn panics_and_errors_are_isolated_and_counted(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(2));
    let (done, mut dones) = signals();
    for index in 0..30 {
        let done = done.clone();
        match index % 3 {
            0 => decorum.add_task(async move { explode(index) }).await,
            1 => {
                decorum
                    .add_task(async move { Err::<(), _>(format!("task {index} fails")) })
                    .await
            }
            _ => {
                decorum
                    .add_task(async move { done.send(index).unwrap() })
                    .await
            }
        }
        .unwrap();
    }
    let succeeded = receive_n(&mut dones, 10, "the 10 tasks of 30 that succeed").await;
    assert_eq!(succeeded.len(), 10);

    // Both slots still serve: two tasks can be running at once after the panics.
    let gate = Gate::closed();
    let (started, mut starts) = signals();
    for index in 0..2 {
        decorum
            .add_task(gate.held_task(index, &started))
            .await
            .unwrap();
    }
    receive_n(&mut starts, 2, "the start of 2 tasks after 10 panics").await;
    assert_eq!(decorum.stats().running, 2);
    gate.open();

    let report = release_after(&etiquette, "10 panicking and 10 failing tasks").await;
    assert_eq!(report.accepted, 32);
    assert_eq!(report.completed, 12);
    assert_eq!(report.failed, 20);
    assert_eq!(report.panicked, 10);
    assert_eq!(report.cancelled, 0);
}

pub(crate) async fn release_runs_every_accepted_task(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(4).queue_capacity(1_000));
    let counter = Arc::new(Mutex::new(0));
    for _ in 0..1_000 {
        let counter = counter.clone();
        decorum
            .add_task(async move {
                yield_now().await;
                *counter.lock().unwrap() += 1;
            })
            .await
            .unwrap();
    }
    let report = release_after(&etiquette, "1,000 tasks").await;
    assert_eq!(*counter.lock().unwrap(), 1_000);
    assert_eq!((report.accepted, report.completed), (1_000, 1_000));
    // A second call waits for nothing and reports the same totals.
    let again = within(
        "a second release of the released queue",
        etiquette.release(),
    )
    .await;
    assert_eq!(again, report);
}

pub(crate) async fn release_timeout_cancels_and_counts_the_rest(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(2));
    let never = Gate::closed();
    let (done, mut dones) = signals();
    for index in 0..5 {
        let done = done.clone();
        decorum
            .add_task(async move { done.send(index).unwrap() })
            .await
            .unwrap();
    }
    receive_n(&mut dones, 5, "the end of 5 quick tasks").await;
    for _ in 0..7 {
        let never = never.clone();
        decorum
            .add_task(async move { never.pass().await })
            .await
            .unwrap();
    }
    let report = within(
        "the release, past its deadline, of 7 tasks that never finish",
        etiquette.release_timeout(DEADLINE),
    )
    .await;
    assert_eq!(report.accepted, 12);
    assert_eq!(report.completed, 5);
    assert_eq!(report.cancelled, 7, "2 running and 5 queued were cut short");
    assert_eq!(etiquette.stats().running, 0);
    assert_eq!(etiquette.stats().queued, 0);
}

pub(crate) async fn release_timeout_does_not_cancel_what_finishes(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(3));
    for _ in 0..50 {
        decorum.add_task(yield_now()).await.unwrap();
    }
    let report = within(
        "the release, an hour before its deadline, of 50 quick tasks",
        etiquette.release_timeout(Duration::from_secs(3_600)),
    )
    .await;
    assert_eq!((report.completed, report.cancelled), (50, 0));
}

pub(crate) async fn no_accepted_task_is_ever_lost(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(3).queue_capacity(64));
    let never = Gate::closed();
    let mut accepted = 0;
    for index in 0..200_u32 {
        let never = never.clone();
        // A fixed mix of every fate a task can meet.
        let result = match index % 5 {
            0 => decorum.try_add_task(async move { explode(index as usize) }),
            1 => decorum.try_add_task(async { Err::<(), _>("failed") }),
            2 => decorum.try_add_task(async move { never.pass().await }),
            _ => decorum.try_add_task(yield_now()),
        };
        match result {
            Ok(_) => accepted += 1,
            Err(error) => assert_eq!(error, AddTaskError::Full),
        }
    }
    let report = within(
        "the release, past its deadline, of tasks meeting every fate",
        etiquette.release_timeout(DEADLINE),
    )
    .await;
    assert_eq!(report.accepted, accepted);
    assert_eq!(
        report.completed + report.failed + report.cancelled,
        accepted,
        "{report}"
    );
    assert!(report.cancelled > 0, "some tasks were blocked forever");
}

pub(crate) async fn dropping_every_handle_still_runs_accepted_tasks(builder: Builder) {
    let (etiquette, decorum) = build(builder.max_concurrent_tasks(2));
    let (done, mut dones) = signals();
    for index in 0..100 {
        let done = done.clone();
        decorum
            .add_task(async move {
                yield_now().await;
                done.send(index).unwrap();
            })
            .await
            .unwrap();
    }
    drop((etiquette, decorum, done));
    let mut ran = receive_n(&mut dones, 100, "100 tasks whose handles were all dropped").await;
    ran.sort_unstable();
    assert_eq!(ran, (0..100).collect::<Vec<_>>());
    // Every sender is gone: the workers finished and dropped their tasks.
    let end = within("the workers to drop 100 finished tasks", dones.recv()).await;
    assert!(end.is_none());
}
