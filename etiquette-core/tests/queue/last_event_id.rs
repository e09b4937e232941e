//! Resuming after `u64::MAX`, what a huge `Last-Event-ID` parses to: an id
//! past every id the queue issues, which replays nothing and is no lag.

use std::time::Duration;

use etiquette_core::{Builder, Decorum, Etiquette, Lagged, Subscription, TaskEvent};

use crate::support::{Gate, receive_n, signals};

fn queue() -> (Etiquette, Decorum) {
    let etiquette = Builder::new()
        .max_concurrent_tasks(2)
        .event_buffer(256)
        .build()
        .unwrap();
    let decorum = etiquette.decorum();
    (etiquette, decorum)
}

/// Every item of a subscription, failing if it has not ended in 5 seconds.
async fn drain(mut subscription: Subscription, what: &str) -> Vec<Result<TaskEvent, Lagged>> {
    let all = async {
        let mut seen = Vec::new();
        while let Some(item) = subscription.next().await {
            seen.push(item);
        }
        seen
    };
    tokio::time::timeout(Duration::from_secs(5), all)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within 5 seconds"))
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
    assert_eq!(drain(live, "the live subscription").await, []);
    // Taken after the close: the buffer alone.
    let closed = decorum.subscribe(Some(u64::MAX));
    assert_eq!(drain(closed, "the closed subscription").await, []);
    // The buffer does hold the history a smaller id would replay.
    let history = drain(decorum.subscribe(None), "the full replay").await;
    assert_eq!(history.len(), 9, "{history:?}");
    etiquette.release().await;
}

#[tokio::test]
async fn a_running_tasks_events_after_u64_max_are_only_the_live_ones() {
    let (etiquette, decorum) = queue();
    let (gate, (started, mut has_started)) = (Gate::closed(), signals());
    let passage = gate.clone();
    let task = decorum
        .add_task(async move {
            let _ = started.send(0);
            passage.pass().await;
        })
        .await
        .unwrap();
    receive_n(&mut has_started, 1, "the blocked task's start").await;

    let subscription = decorum.subscribe_task(task.id(), Some(u64::MAX)).unwrap();
    gate.open();
    let seen = drain(subscription, "the task's subscription").await;
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
    let subscription = decorum.subscribe_task(task.id(), Some(u64::MAX)).unwrap();
    assert_eq!(
        drain(subscription, "the finished task's subscription").await,
        []
    );
    etiquette.release().await;
}
