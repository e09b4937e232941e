//! The behaviour every adapter must show, whatever the framework.
//!
//! Each app serves the same routes (see `Framework::app`); tests wait on the
//! queue (release, stats) or on task signals, never on the clock.

use std::future::Future;

use std::time::Duration;

use etiquette_core::{Builder, Etiquette, RetryPolicy};
use etiquette_tests::Probe;

/// What a test sees of a response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) task_id: Option<String>,
    pub(crate) body: String,
}

/// Sends requests to an app in-process.
pub(crate) trait Client {
    /// GET with extra request headers.
    fn get_with(
        &self,
        uri: &str,
        headers: &[(&'static str, String)],
    ) -> impl Future<Output = Reply>;

    fn get(&self, uri: &str) -> impl Future<Output = Reply> {
        self.get_with(uri, &[])
    }
}

/// A framework under test: builds the app serving these routes, each
/// answering `OK` once its task is accepted:
///
/// | route              | task                                  | adds with      |
/// |--------------------|---------------------------------------|----------------|
/// | `/safe`            | `probe.add(1)`, id in `x-task-id`     | `add_task`     |
/// | `/racy`            | `probe.racy_increment()`              | `add_task`     |
/// | `/splat/{n}`       | `probe.add(n)`                        | `add_task`     |
/// | `/splat?n=N`       | `probe.add(N)`                        | `add_task`     |
/// | `/fail`, `/panic`  | `probe.fail()`, `probe.panic()`       | `add_task`     |
/// | `/try-block`       | `probe.block()`                       | `try_add_task` |
///
/// and `/status/{id}`, the task's status as JSON, or 404; `/progress`, a
/// task reporting progress (`etiquette_tests::reporting`), its id in
/// `x-task-id`; `/events/{id}` and `/events`, the adapter's SSE responses.
pub(crate) trait Framework {
    fn app(etiquette: Etiquette, probe: Probe) -> impl Future<Output = impl Client>;
}

async fn get_ok(client: &impl Client, uri: &str) {
    let reply = client.get(uri).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "GET {uri}"
    );
}

fn queue(limit: usize) -> Etiquette {
    Builder::new()
        .max_concurrent_tasks(limit)
        .event_buffer(256)
        .build()
        .unwrap()
}

/// The `(id, event, data)` of each SSE frame in a body, keep-alives skipped.
fn frames(body: &str) -> Vec<(Option<u64>, String, serde_json::Value)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let (mut id, mut event, mut data) = (None, None, None);
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("id:") {
                    id = value.trim().parse().ok();
                } else if let Some(value) = line.strip_prefix("event:") {
                    event = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data = serde_json::from_str(value.trim()).ok();
                }
            }
            Some((id, event?, data?))
        })
        .collect()
}

fn names(frames: &[(Option<u64>, String, serde_json::Value)]) -> Vec<&str> {
    frames.iter().map(|(_, event, _)| event.as_str()).collect()
}

const REQUESTS: u64 = 24;

pub(crate) async fn race_is_exact_at_limit_1<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(1), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for _ in 0..REQUESTS {
        get_ok(&client, "/racy").await;
    }
    // The first task has read and waits; with one slot, nobody else reads.
    signals.wait_for(1).await;
    assert_eq!(etiquette.stats().running, 1);
    probe.open_gate();
    etiquette.release().await;
    assert_eq!(probe.racy(), REQUESTS);
}

pub(crate) async fn race_loses_updates_at_limit_8<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(8), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for _ in 0..REQUESTS {
        get_ok(&client, "/racy").await;
    }
    // Eight tasks have all read the same value before any writes it back.
    signals.wait_for(8).await;
    probe.open_gate();
    let report = etiquette.release().await;
    assert_eq!(report.completed, REQUESTS);
    assert!(
        probe.racy() <= REQUESTS - 7,
        "the race lost no update: {}",
        probe.racy()
    );
}

pub(crate) async fn safe_counter_is_exact_at_any_limit<F: Framework>() {
    for limit in [1, 8, 64] {
        let (etiquette, (probe, _signals)) = (queue(limit), Probe::new());
        let client = F::app(etiquette.clone(), probe.clone()).await;
        for _ in 0..REQUESTS {
            get_ok(&client, "/safe").await;
        }
        etiquette.release().await;
        assert_eq!(probe.safe(), REQUESTS, "at limit {limit}");
    }
}

pub(crate) async fn path_parameters_reach_the_task<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(4), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for n in 0..20 {
        get_ok(&client, &format!("/splat/{n}")).await;
    }
    etiquette.release().await;
    assert_eq!(probe.safe(), 190);
}

pub(crate) async fn query_parameters_reach_the_task<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(4), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for n in 0..20 {
        get_ok(&client, &format!("/splat?n={n}")).await;
    }
    etiquette.release().await;
    assert_eq!(probe.safe(), 190);
}

pub(crate) async fn failures_do_not_fail_the_request<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(1), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    get_ok(&client, "/fail").await;
    get_ok(&client, "/panic").await;
    for _ in 0..3 {
        get_ok(&client, "/safe").await;
    }
    let report = etiquette.release().await;
    assert_eq!(probe.safe(), 3, "tasks after the failures still ran");
    assert_eq!(
        (report.completed, report.failed, report.panicked),
        (3, 2, 1)
    );
    assert_eq!(etiquette.stats().failed, 2);
}

pub(crate) async fn overload_answers_503_with_retry_after<F: Framework>() {
    let etiquette = Builder::new()
        .max_concurrent_tasks(1)
        .queue_capacity(1)
        .build()
        .unwrap();
    let (probe, mut signals) = Probe::new();
    let client = F::app(etiquette.clone(), probe.clone()).await;
    get_ok(&client, "/try-block").await;
    signals.wait_for(1).await;
    get_ok(&client, "/try-block").await;

    let reply = client.get("/try-block").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    assert!(reply.body.contains("full"), "{}", reply.body);

    probe.open_gate();
    let report = etiquette.release().await;
    assert_eq!((report.accepted, report.completed), (2, 2));
}

pub(crate) async fn release_completes_every_accepted_request<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for _ in 0..50 {
        get_ok(&client, "/safe").await;
    }
    let report = etiquette.release().await;
    assert_eq!(probe.safe(), 50);
    assert_eq!(
        (report.accepted, report.completed, report.cancelled),
        (50, 50, 0)
    );
}

pub(crate) async fn requests_after_release_answer_503<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    etiquette.release().await;
    for uri in ["/safe", "/try-block"] {
        let reply = client.get(uri).await;
        assert_eq!(reply.status, 503, "GET {uri}");
        assert_eq!(reply.retry_after, None);
        assert!(reply.body.contains("shutting down"), "{}", reply.body);
    }
}

pub(crate) async fn task_status_is_served_as_json<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let reply = client.get("/safe").await;
    let id = reply.task_id.expect("the task id is in x-task-id");
    etiquette.release().await;

    let status = client.get(&format!("/status/{id}")).await;
    assert_eq!(status.status, 200);
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"status": "succeeded", "attempts": 1})
    );
    assert_eq!(client.get("/status/987654").await.status, 404);
}

pub(crate) async fn sse_streams_a_tasks_events_until_its_end<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let blocked = client.get("/try-block").await.task_id;
    let reporting = client.get("/progress").await.task_id.unwrap();

    // The stream of the blocked task stays open until the task ends.
    let uri = format!("/events/{}", blocked.expect("x-task-id"));
    let (stream, ()) = tokio::join!(client.get(&uri), async {
        signals.wait_for(1).await;
        probe.open_gate();
    });
    assert_eq!(stream.status, 200);
    assert_eq!(
        names(&frames(&stream.body)),
        ["queued", "started", "succeeded"]
    );

    let stream = client.get(&format!("/events/{reporting}")).await;
    let seen = frames(&stream.body);
    assert_eq!(
        names(&seen),
        ["queued", "started", "progress", "progress", "succeeded"]
    );
    assert_eq!(seen[2].2["fraction"], 0.5);
    assert_eq!(seen[2].2["message"], "half way");
    assert_eq!(seen[2].2["task"].as_u64().unwrap().to_string(), reporting);
    let ids: Vec<u64> = seen.iter().map(|(id, ..)| id.unwrap()).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    assert_eq!(client.get("/events/987654").await.status, 404);
    etiquette.release().await;
}

pub(crate) async fn sse_resumes_after_last_event_id<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let id = client.get("/progress").await.task_id.unwrap();
    let full = frames(&client.get(&format!("/events/{id}")).await.body);
    let started = full[1].0.unwrap();

    let header = [("last-event-id", started.to_string())];
    let resumed = client.get_with(&format!("/events/{id}"), &header).await;
    assert_eq!(
        names(&frames(&resumed.body)),
        ["progress", "progress", "succeeded"]
    );
    etiquette.release().await;
}

pub(crate) async fn sse_stream_of_all_events_ends_when_streams_close<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    client.get("/safe").await;
    let (stream, ()) = tokio::join!(client.get("/events"), async {
        tokio::task::yield_now().await;
        etiquette.close_event_streams();
    });
    assert_eq!(stream.status, 200);
    assert_eq!(
        names(&frames(&stream.body)),
        ["queued", "started", "succeeded"]
    );
    etiquette.release().await;
}

pub(crate) async fn sse_shows_each_outcome_in_order<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let decorum = etiquette.decorum();
    let mut attempts = 0;
    let retried = decorum
        .task(move || {
            attempts += 1;
            let first = attempts == 1;
            async move { if first { Err("flaky") } else { Ok(()) } }
        })
        .retry(RetryPolicy::exponential(2, Duration::from_millis(1)))
        .add()
        .await
        .unwrap();
    let failing = decorum
        .task(|| async { Err::<(), _>("broken") })
        .retry(RetryPolicy::never())
        .add()
        .await
        .unwrap();
    let cancelled = decorum.add_task(probe.block()).await.unwrap();
    signals.wait_for(1).await;
    assert!(cancelled.cancel());
    for task in [&retried, &failing, &cancelled] {
        let _ = task.outcome().await;
    }

    let stream = |id: etiquette_core::TaskId| {
        let uri = format!("/events/{id}");
        let client = &client;
        async move { frames(&client.get(&uri).await.body) }
    };
    let seen = stream(retried.id()).await;
    assert_eq!(
        names(&seen),
        ["queued", "started", "retrying", "started", "succeeded"]
    );
    assert_eq!(seen[2].2["error"], "flaky");
    let seen = stream(failing.id()).await;
    assert_eq!(names(&seen), ["queued", "started", "failed"]);
    assert_eq!(seen[2].2["error"], "broken");
    let seen = stream(cancelled.id()).await;
    assert_eq!(names(&seen), ["queued", "started", "cancelled"]);
    etiquette.release().await;
}
