//! Resuming after `u64::MAX`, what a huge `Last-Event-ID` parses to: an id
//! past every id the queue issues, which replays nothing and is no lag.

use etiquette_core::{Builder, Decorum, Etiquette};

use crate::support::{Gate, build, drain, hold_a_worker};

fn queue() -> (Etiquette, Decorum) {
    build(Builder::new().max_concurrent_tasks(2).event_buffer(256))
}

#[tokio::test]
async fn all_events_after_u64_max_replay_nothing() {
    let (etiquette, decorum) = queue();
    for _ in 0..3 {
        let task = decorum.add_task(async {}).await.unwrap();
        task.outcome().await.unwrap();
    }
    // Taken while the stream is live, ended by the close.
    let live = decorum.subscribe(Some(u64::MAX));
    etiquette.close_event_streams();
    assert_eq!(drain("the live subscription", live).await, []);
    // Taken after the close: the buffer alone.
    let closed = decorum.subscribe(Some(u64::MAX));
    assert_eq!(drain("the closed subscription", closed).await, []);
    // The buffer does hold the history a smaller id would replay.
    let history = drain("the full replay", decorum.subscribe(None)).await;
    assert_eq!(history.len(), 9, "{history:?}");
    etiquette.release().await;
}

#[tokio::test]
async fn a_running_tasks_events_after_u64_max_are_only_the_live_ones() {
    let (etiquette, decorum) = queue();
    let gate = Gate::closed();
    let task = hold_a_worker(&decorum, &gate).await;

    let subscription = decorum
        .subscribe_task_now(task.id(), Some(u64::MAX))
        .unwrap();
    gate.open();
    let seen = drain("the task's subscription", subscription).await;
    let names: Vec<_> = seen
        .iter()
        .map(|item| item.as_ref().expect("no lag").kind.name())
        .collect();
    assert_eq!(names, ["succeeded"], "queued and started are not replayed");
    etiquette.release().await;
}

#[tokio::test]
async fn a_finished_tasks_events_after_u64_max_replay_nothing() {
    let (etiquette, decorum) = queue();
    let task = decorum.add_task(async {}).await.unwrap();
    task.outcome().await.unwrap();
    let subscription = decorum
        .subscribe_task_now(task.id(), Some(u64::MAX))
        .unwrap();
    assert_eq!(
        drain("the finished task's subscription", subscription).await,
        []
    );
    etiquette.release().await;
}
