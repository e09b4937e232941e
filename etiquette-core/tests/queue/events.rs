//! Task lifecycle events, as a subscriber (an SSE client) sees them.

use std::time::Duration;

use etiquette_core::{
    Builder, Decorum, Etiquette, EventKind, Job, RetryPolicy, Subscription, TaskContext, TaskId,
};
use serde::{Deserialize, Serialize};

use crate::support::{Gate, build, flaky_once, release_after, within};

fn names_of(events: &[(u64, EventKind)]) -> Vec<&'static str> {
    events.iter().map(|(_, kind)| kind.name()).collect()
}

/// The id and kind of every event up to the end of the stream `what`
/// names, within the bound; a lag fails the test.
async fn drain(what: &str, subscription: Subscription) -> Vec<(u64, EventKind)> {
    let items = crate::support::drain(what, subscription).await;
    items
        .into_iter()
        .map(|item| item.expect("no lag expected"))
        .map(|event| (event.id, event.kind))
        .collect()
}

fn queue(buffer: usize) -> (Etiquette, Decorum) {
    build(Builder::new().max_concurrent_tasks(2).event_buffer(buffer))
}

/// Adds `tasks` tasks that do nothing, and releases the queue once they
/// have run: what the queue's streams replay is then complete.
async fn run_and_release(etiquette: &Etiquette, tasks: usize) {
    let decorum = etiquette.decorum();
    for _ in 0..tasks {
        decorum.add_task(async {}).await.unwrap();
    }
    release_after(etiquette, &format!("{tasks} tasks")).await;
}

#[tokio::test(start_paused = true)]
async fn each_outcome_has_its_full_ordered_sequence() {
    let (etiquette, decorum) = queue(256);
    let succeeding = decorum
        .task_with_context(|context| async move {
            context.report(0.5, "half way");
            context.progress(1.0);
        })
        .add()
        .await
        .unwrap();
    let retried = decorum
        .task(flaky_once())
        .retry(RetryPolicy::exponential(2, Duration::from_secs(1)))
        .add()
        .await
        .unwrap();
    let failing = decorum
        .task(|| async { Err::<(), _>("broken") })
        .retry(RetryPolicy::never())
        .add()
        .await
        .unwrap();
    let never = Gate::closed();
    let gate = never.clone();
    let cancelled = decorum
        .add_task(async move { gate.pass().await })
        .await
        .unwrap();
    tokio::task::yield_now().await;
    cancelled.cancel_now();
    release_after(&etiquette, "one task of each outcome").await;

    let events = |what, id| drain(what, decorum.subscribe_task_now(id, None).unwrap());
    let seen = events("the end of the succeeding task's events", succeeding.id()).await;
    assert_eq!(
        names_of(&seen),
        ["queued", "started", "progress", "progress", "succeeded"]
    );
    assert_eq!(
        seen[2].1,
        EventKind::Progress {
            fraction: Some(0.5),
            message: Some("half way".into())
        }
    );
    let seen = events("the end of the retried task's events", retried.id()).await;
    assert_eq!(
        names_of(&seen),
        ["queued", "started", "retrying", "started", "succeeded"]
    );
    assert!(
        matches!(seen[2].1, EventKind::Retrying { attempt: 1, ref error, .. } if error == "flaky")
    );
    assert!(matches!(seen[4].1, EventKind::Succeeded { attempts: 2 }));
    let seen = events("the end of the failing task's events", failing.id()).await;
    assert_eq!(names_of(&seen), ["queued", "started", "failed"]);
    let seen = events("the end of the cancelled task's events", cancelled.id()).await;
    assert_eq!(names_of(&seen), ["queued", "started", "cancelled"]);
}

/// A typed job that succeeds at once.
#[derive(Serialize, Deserialize)]
struct Resize;

impl Job for Resize {
    const NAME: &'static str = "resize";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The job each of task `id`'s events names, by event name.
async fn jobs_named(
    decorum: &Decorum,
    what: &str,
    id: TaskId,
) -> Vec<(&'static str, Option<&'static str>)> {
    let seen = drain(what, decorum.subscribe_task_now(id, None).unwrap()).await;
    seen.iter()
        .map(|(_, kind)| (kind.name(), kind.job()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_typed_jobs_events_name_it_where_it_is_first_seen_and_a_closures_name_nothing() {
    let (etiquette, decorum) = queue(256);
    let job = decorum.job(Resize).add().await.unwrap();
    let later_job = decorum
        .job(Resize)
        .delay(Duration::from_secs(1))
        .add()
        .await
        .unwrap();
    let closure = decorum.add_task(async {}).await.unwrap();
    let later_closure = decorum
        .task(|| async {})
        .delay(Duration::from_secs(1))
        .add()
        .await
        .unwrap();
    release_after(
        &etiquette,
        "two jobs and two closure tasks, two of them delayed",
    )
    .await;

    let named = Some("resize");
    assert_eq!(
        jobs_named(&decorum, "the typed job's events", job.id()).await,
        [("queued", named), ("started", named), ("succeeded", None)]
    );
    assert_eq!(
        jobs_named(&decorum, "the delayed typed job's events", later_job.id()).await,
        [
            ("scheduled", named),
            ("started", named),
            ("succeeded", None)
        ]
    );
    assert_eq!(
        jobs_named(&decorum, "the closure task's events", closure.id()).await,
        [("queued", None), ("started", None), ("succeeded", None)]
    );
    assert_eq!(
        jobs_named(
            &decorum,
            "the delayed closure task's events",
            later_closure.id()
        )
        .await,
        [("scheduled", None), ("started", None), ("succeeded", None)]
    );
}

#[tokio::test]
async fn event_ids_increase_by_one_across_the_queue() {
    let (etiquette, decorum) = queue(1024);
    let all = decorum.subscribe(None);
    run_and_release(&etiquette, 50).await;
    let seen = drain("the end of the queue's event stream", all).await;
    assert_eq!(seen.len(), 150, "queued, started, succeeded for each task");
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=150).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_slow_the_queue() {
    let (etiquette, decorum) = queue(0);
    let mut stalled = decorum.subscribe(None);
    // More than the queue holds: the adder waits for room as tasks run.
    within("room in the queue for 2,000 tasks", async {
        for _ in 0..2_000 {
            decorum.add_task(async {}).await.unwrap();
        }
    })
    .await;
    // All 6,000 events were published past a 16-event buffer nobody read.
    let report = release_after(&etiquette, "2,000 tasks").await;
    assert_eq!(report.completed, 2_000);
    let first = within("the stalled subscriber's first item", stalled.next())
        .await
        .unwrap();
    let lagged = first.expect_err("the stalled subscriber is told it lagged");
    assert!(lagged.missed > 5_000, "{lagged}");
    let rest = within("the end of the stalled subscriber's stream", async {
        let mut rest = 0;
        while let Some(item) = stalled.next().await {
            item.unwrap();
            rest += 1;
        }
        rest
    })
    .await;
    assert!(rest >= 16, "it resumes with the newest events: {rest}");
}

#[tokio::test]
async fn resuming_after_an_event_id_replays_exactly_what_followed() {
    let (etiquette, decorum) = queue(1024);
    run_and_release(&etiquette, 10).await;
    let seen = drain(
        "the end of a stream resumed after event 20",
        decorum.subscribe(Some(20)),
    )
    .await;
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (21..=30).collect::<Vec<_>>());
}

#[tokio::test]
async fn resuming_past_the_buffer_reports_what_was_lost() {
    let (etiquette, decorum) = queue(8);
    run_and_release(&etiquette, 10).await;
    let mut resumed = decorum.subscribe(Some(5));
    let first = within("the first item resumed after event 5", resumed.next()).await;
    let lagged = first.unwrap().unwrap_err();
    assert_eq!(lagged.missed, 17, "events 6..=22 were evicted");
    let second = within("the second item resumed after event 5", resumed.next()).await;
    assert_eq!(second.unwrap().unwrap().id, 23);
}

#[tokio::test]
async fn a_finished_task_stream_ends_even_when_its_events_are_gone() {
    let (etiquette, decorum) = queue(0);
    let task = decorum.add_task(async {}).await.unwrap();
    within("the outcome of the task", task.outcome())
        .await
        .unwrap();
    let subscription = decorum.subscribe_task_now(task.id(), None).unwrap();
    let seen = drain("the end of the finished task's events", subscription).await;
    assert_eq!(names_of(&seen), ["succeeded"]);
    assert!(decorum.subscribe_task_now(99.into(), None).is_none());
    release_after(&etiquette, "1 task").await;
}

#[tokio::test]
async fn closing_streams_ends_open_subscriptions() {
    let (etiquette, decorum) = queue(16);
    let mut all = decorum.subscribe(None);
    let gate = Gate::closed();
    let g = gate.clone();
    decorum
        .add_task(async move { g.pass().await })
        .await
        .unwrap();
    let first = within("the first event of the queue's stream", all.next()).await;
    assert_eq!(
        first.unwrap().unwrap().kind,
        EventKind::Queued { job: None }
    );
    etiquette.close_event_streams();
    // What was published before the close is still delivered, then the end.
    let rest = within("the end of the closed stream", async {
        let mut rest = Vec::new();
        while let Some(item) = all.next().await {
            rest.push(item.unwrap().kind.name());
        }
        rest
    })
    .await;
    assert!(rest.iter().all(|name| *name == "started"), "{rest:?}");
    // A subscription made after the close ends at once after the buffer.
    let late = decorum.subscribe(Some(u64::MAX - 1));
    assert!(
        drain("the end of a stream subscribed after the close", late)
            .await
            .is_empty()
    );
    gate.open();
    release_after(&etiquette, "1 task").await;
}
