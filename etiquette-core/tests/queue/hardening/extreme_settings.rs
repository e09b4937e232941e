//! Extreme settings build and work: the largest event buffers and limit,
//! and workers that retire between bursts.

use std::time::Duration;

use etiquette_core::{Builder, Lagged, TaskEvent};

use super::still_runs;
use super::streams::assert_ends_once;
use crate::support::{build, drain, within};

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
        decorum.subscribe_task_now(tasks[1].id(), None).unwrap(),
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
