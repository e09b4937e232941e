//! What only tokio can show: virtual time, runtime binding, executor loss.

use std::time::Duration;

use etiquette_core::{BuildError, Builder, Etiquette, RetryPolicy, TaskStatus, TokioSpawner};
use tokio::time::Instant;

use crate::support::{Gate, receive_n, release_after, signals, within, within_for};

#[test]
fn settings_are_validated_without_panicking() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    assert_eq!(
        Etiquette::initiate(0).unwrap_err(),
        BuildError::ZeroConcurrency
    );
    assert_eq!(
        Builder::new().queue_capacity(0).build().unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert_eq!(
        Builder::new()
            .queue_capacity(usize::MAX)
            .build()
            .unwrap_err(),
        BuildError::TooLarge
    );
    assert_eq!(
        Builder::new()
            .max_concurrent_tasks(usize::MAX)
            .build()
            .unwrap_err(),
        BuildError::TooLarge
    );
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    let error = Etiquette::initiate(4).unwrap_err();
    assert_eq!(error, BuildError::NoRuntime);
    assert!(error.to_string().contains("tokio runtime"));
}

#[tokio::test(start_paused = true)]
async fn limit_shapes_the_timeline() {
    // Like the original's sleeper: 6 tasks of 3 s, 2 at a time, take 9 s.
    let etiquette = Etiquette::initiate(2).unwrap();
    let decorum = etiquette.decorum();
    let start = Instant::now();
    for _ in 0..6 {
        decorum
            .add_task(async { tokio::time::sleep(Duration::from_secs(3)).await })
            .await
            .unwrap();
    }
    let report = within_for(
        Duration::from_secs(30),
        "the release of the queue after 6 tasks of 3 s, 2 at a time",
        etiquette.release(),
    )
    .await;
    assert_eq!(report.completed, 6);
    assert_eq!(start.elapsed(), Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn release_timeout_fires_exactly_at_the_deadline() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let decorum = etiquette.decorum();
    for _ in 0..2 {
        decorum
            .add_task(async { tokio::time::sleep(Duration::from_secs(10)).await })
            .await
            .unwrap();
    }
    for _ in 0..3 {
        decorum
            .add_task(async { tokio::time::sleep(Duration::from_secs(60)).await })
            .await
            .unwrap();
    }
    let start = Instant::now();
    let report = within_for(
        Duration::from_secs(60),
        "the release, past its 30 s deadline, of tasks of 60 s",
        etiquette.release_timeout(Duration::from_secs(30)),
    )
    .await;
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    // The two 10 s tasks finished at 10 s; two 60 s tasks were then running
    // and one was still queued at 30 s.
    assert_eq!((report.completed, report.cancelled), (2, 3));
}

#[test]
fn tasks_run_on_the_runtime_the_queue_was_built_on() {
    // As under actix-web: the handler's runtime stops, the queue's does not.
    let main_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let etiquette = main_runtime.block_on(async { Etiquette::initiate(4).unwrap() });
    let decorum = etiquette.decorum();
    let gate = Gate::closed();
    let (done, mut dones) = signals();

    let worker_runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    worker_runtime.block_on(async {
        for index in 0..8 {
            let (gate, done) = (gate.clone(), done.clone());
            decorum
                .add_task(async move {
                    gate.pass().await;
                    done.send(index).unwrap();
                })
                .await
                .unwrap();
        }
    });
    drop(worker_runtime);

    gate.open();
    main_runtime.block_on(async {
        let done = receive_n(&mut dones, 8, "8 tasks added from a runtime since dropped").await;
        assert_eq!(done.len(), 8);
        let report = release_after(&etiquette, "8 tasks").await;
        assert_eq!(report.completed, 8);
    });
}

/// A one-thread runtime, to be lost with the queue built on it.
fn runtime_to_lose() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap()
}

/// Adds `tasks` tasks that never finish, waits until `running` of them have
/// started, then shuts the runtime down: the queue's workers, and the tasks
/// they hold, go with it.
fn lose_with_stuck_tasks(
    runtime: tokio::runtime::Runtime,
    etiquette: &Etiquette,
    tasks: usize,
    running: usize,
) {
    let never = Gate::closed();
    let (started, mut starts) = signals();
    runtime.block_on(async {
        for index in 0..tasks {
            etiquette
                .decorum()
                .add_task(never.held_task(index, &started))
                .await
                .unwrap();
        }
        let what = format!("the start of {running} tasks on the runtime to lose");
        receive_n(&mut starts, running, &what).await;
    });
    runtime.shutdown_background();
}

#[test]
fn tasks_lost_with_their_runtime_are_reported_cancelled() {
    let runtime = runtime_to_lose();
    let etiquette = runtime.block_on(async { Etiquette::initiate(2).unwrap() });
    lose_with_stuck_tasks(runtime, &etiquette, 5, 2);

    let report = futures_executor::block_on(within(
        "the release of a queue whose runtime is lost",
        etiquette.release(),
    ));
    assert_eq!(report.accepted, 5);
    assert_eq!(
        report.cancelled, 5,
        "2 running and 3 queued went with the runtime"
    );
}

#[test]
fn a_task_waiting_to_retry_when_its_runtime_is_lost_is_reported_cancelled() {
    let runtime = runtime_to_lose();
    let etiquette = runtime.block_on(async { Etiquette::initiate(1).unwrap() });
    let waiting = runtime.block_on(async {
        let handle = etiquette
            .decorum()
            .task(|| async { Err::<(), _>("down") })
            .retry(RetryPolicy::exponential(3, Duration::from_secs(3600)))
            .add()
            .await
            .unwrap();
        within("the task's first attempt to fail", async {
            while !matches!(handle.status_now(), TaskStatus::Retrying { .. }) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        handle
    });
    // Drops the retry timer, which holds the task.
    runtime.shutdown_background();

    let report = futures_executor::block_on(within(
        "the release of a queue whose runtime is lost with a retry timer",
        etiquette.release(),
    ));
    assert!(matches!(waiting.status_now(), TaskStatus::Cancelled));
    assert_eq!(
        (report.accepted, report.retried, report.cancelled),
        (1, 1, 1)
    );
}

#[test]
fn tasks_left_queued_by_a_lost_runtime_end_their_event_streams_once_the_queue_is_dropped() {
    let runtime = runtime_to_lose();
    let etiquette = runtime.block_on(async { Etiquette::initiate(1).unwrap() });
    let mut events = etiquette.decorum().subscribe(None);
    lose_with_stuck_tasks(runtime, &etiquette, 3, 1);
    // Nobody releases the queue, and its executor is gone.
    drop(etiquette);

    let mut ended = futures_executor::block_on(within(
        "the end of the event stream of a queue dropped with its runtime lost",
        async {
            let mut ended = Vec::new();
            while let Some(event) = events.next().await {
                let event = event.unwrap();
                if event.kind.is_final() {
                    ended.push((event.task.get(), event.kind.name()));
                }
            }
            ended
        },
    ));
    ended.sort_unstable();
    assert_eq!(
        ended,
        [(1, "cancelled"), (2, "cancelled"), (3, "cancelled")],
        "every task ends, and the stream with them"
    );
}

#[tokio::test]
async fn an_explicit_tokio_spawner_can_be_given() {
    let spawner = TokioSpawner::try_current().unwrap();
    let etiquette = Builder::new().spawner(spawner).build().unwrap();
    etiquette.decorum().add_task(async {}).await.unwrap();
    let report = release_after(&etiquette, "1 task").await;
    assert_eq!(report.completed, 1);
}

/// A stream of tasks that never wait must not keep the thread from the
/// application's other work, such as serving requests.
#[tokio::test(flavor = "current_thread")]
async fn a_backlog_of_instant_tasks_does_not_starve_the_thread() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

    const TASKS: usize = 1_000;
    let etiquette = Builder::new()
        .max_concurrent_tasks(1)
        .queue_capacity(TASKS)
        .build()
        .unwrap();
    let decorum = etiquette.decorum();
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..TASKS {
        let ran = ran.clone();
        // Without awaiting, so that nothing runs before the whole backlog
        // is queued.
        decorum
            .try_add_task(async move {
                ran.fetch_add(1, SeqCst);
            })
            .unwrap();
    }
    // Another task of the application, behind the worker in the run queue.
    let other = tokio::spawn({
        let ran = ran.clone();
        async move { ran.load(SeqCst) }
    });
    let seen = within("the application's other task", other).await.unwrap();
    assert!(
        seen < TASKS,
        "the other task waited for the whole backlog ({seen} tasks)"
    );
    let report = release_after(&etiquette, "a backlog of 1,000 tasks").await;
    assert_eq!(report.completed, TASKS as u64);
}
