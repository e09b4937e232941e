//! The behaviour every adapter must show, whatever the framework.
//!
//! Each app serves the same routes (see `Framework::app`); tests wait on the
//! queue (release, stats), on task outcomes or on task signals, never on the
//! clock to let something happen. Every such wait, and every response with
//! its whole body, is bounded by [`within`], so that a stream that never
//! ends, a release that never drains or a signal that never comes fails the
//! test, naming what it waited for, instead of hanging it.

use std::fmt::Display;
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
    pub(crate) content_type: Option<String>,
    pub(crate) body: String,
}

impl Reply {
    /// Reads what a test sees of any framework's response, once its whole
    /// body is in: `header` looks a header's value up by name, as text.
    pub(crate) fn read<'h>(
        status: u16,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Self {
        let text = |name| header(name).map(str::to_owned);
        Self {
            status,
            retry_after: text("retry-after"),
            task_id: text("x-task-id"),
            content_type: text("content-type"),
            body: String::from_utf8(body.to_vec()).expect("the body is UTF-8"),
        }
    }
}

/// Sends requests to an app in-process; tests send them through
/// [`get_after`], which bounds each one.
pub(crate) trait Client {
    /// GET with extra request headers, whose values may be any bytes a
    /// header value may hold.
    fn get_with(&self, uri: &str, headers: &[(&'static str, &[u8])])
    -> impl Future<Output = Reply>;
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
    let reply = get_after(client, uri, None).await;
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

/// Awaits `future`, failing after 5 seconds with what it waited for.
pub(crate) async fn within<T>(what: impl Display, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .unwrap_or_else(|_| panic!("waited more than 5 seconds for {what}"))
}

/// GET `uri` with a `Last-Event-ID` header (none with `None`: a plain GET),
/// failing if the response and all its body take more than 5 seconds.
pub(crate) async fn get_after(
    client: &impl Client,
    uri: &str,
    last_event_id: Option<&[u8]>,
) -> Reply {
    let headers: &[(&'static str, &[u8])] = match last_event_id {
        Some(value) => &[("last-event-id", value)],
        None => &[],
    };
    let what = match last_event_id {
        Some(value) => format!(
            "the whole response to GET {uri} with Last-Event-ID {:?}",
            String::from_utf8_lossy(value)
        ),
        None => format!("the whole response to GET {uri}"),
    };
    within(what, client.get_with(uri, headers)).await
}

/// The `/progress` task, run to its end, then the event streams closed, so
/// that both SSE routes answer with what is buffered and end: the task's id
/// and the frames of its whole stream.
async fn finished_progress_task(client: &impl Client, etiquette: &Etiquette) -> (String, Frames) {
    let id = get_after(client, "/progress", None).await.task_id;
    let id = id.expect("the task id is in x-task-id");
    let full = get_after(client, &format!("/events/{id}"), None).await;
    assert_eq!(full.status, 200);
    let full = frames(&full.body);
    assert_eq!(
        names(&full),
        ["queued", "started", "progress", "progress", "succeeded"]
    );
    etiquette.close_event_streams();
    (id, full)
}

type Frames = Vec<(Option<u64>, String, serde_json::Value)>;

/// The `(id, event, data)` of each SSE frame in a body, keep-alives skipped.
fn frames(body: &str) -> Frames {
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

/// `REQUESTS` GETs of `/racy` on a queue of `limit` slots, answered once
/// the first `limit` tasks have read the racy counter and wait at the gate.
async fn racy_tasks_at_the_gate<F: Framework>(limit: usize) -> (Etiquette, Probe) {
    let (etiquette, (probe, mut signals)) = (queue(limit), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for _ in 0..REQUESTS {
        get_ok(&client, "/racy").await;
    }
    let what = format!("the signals of the first {limit} /racy tasks");
    within(what, signals.wait_for(limit)).await;
    (etiquette, probe)
}

pub(crate) async fn race_is_exact_at_limit_1<F: Framework>() {
    let (etiquette, probe) = racy_tasks_at_the_gate::<F>(1).await;
    // The first task has read and waits; with one slot, nobody else reads.
    assert_eq!(etiquette.stats().running, 1);
    probe.open_gate();
    within("the release of the queue", etiquette.release()).await;
    assert_eq!(probe.racy(), REQUESTS);
}

pub(crate) async fn race_loses_updates_at_limit_8<F: Framework>() {
    // Eight tasks have all read the same value before any writes it back.
    let (etiquette, probe) = racy_tasks_at_the_gate::<F>(8).await;
    probe.open_gate();
    let report = within("the release of the queue", etiquette.release()).await;
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
        within("the release of the queue", etiquette.release()).await;
        assert_eq!(probe.safe(), REQUESTS, "at limit {limit}");
    }
}

/// The `/splat` route adding `n`, with `n` in the path.
pub(crate) fn splat_path(n: u64) -> String {
    format!("/splat/{n}")
}

/// The `/splat` route adding `n`, with `n` in the query.
pub(crate) fn splat_query(n: u64) -> String {
    format!("/splat?n={n}")
}

pub(crate) async fn path_parameters_reach_the_task<F: Framework>() {
    splats_reach_the_task::<F>(splat_path).await;
}

pub(crate) async fn query_parameters_reach_the_task<F: Framework>() {
    splats_reach_the_task::<F>(splat_query).await;
}

/// GETs `splat(n)` for each `n` below 20: each `n` reaches its task, so
/// the probe's sum is 0 + 1 + … + 19.
async fn splats_reach_the_task<F: Framework>(splat: fn(u64) -> String) {
    let (etiquette, (probe, _signals)) = (queue(4), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for n in 0..20 {
        get_ok(&client, &splat(n)).await;
    }
    within("the release of the queue", etiquette.release()).await;
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
    let report = within("the release of the queue", etiquette.release()).await;
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
    within(
        "the signal of the first /try-block task",
        signals.wait_for(1),
    )
    .await;
    get_ok(&client, "/try-block").await;

    let reply = get_after(&client, "/try-block", None).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    assert!(reply.body.contains("full"), "{}", reply.body);

    probe.open_gate();
    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!((report.accepted, report.completed), (2, 2));
}

pub(crate) async fn release_completes_every_accepted_request<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    for _ in 0..50 {
        get_ok(&client, "/safe").await;
    }
    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(probe.safe(), 50);
    assert_eq!(
        (report.accepted, report.completed, report.cancelled),
        (50, 50, 0)
    );
}

pub(crate) async fn requests_after_release_answer_503<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    within("the release of the queue", etiquette.release()).await;
    for uri in ["/safe", "/try-block"] {
        let reply = get_after(&client, uri, None).await;
        assert_eq!(reply.status, 503, "GET {uri}");
        assert_eq!(reply.retry_after, None);
        assert!(reply.body.contains("shutting down"), "{}", reply.body);
    }
}

pub(crate) async fn task_status_is_served_as_json<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let reply = get_after(&client, "/safe", None).await;
    let id = reply.task_id.expect("the task id is in x-task-id");
    within("the release of the queue", etiquette.release()).await;

    let status = get_after(&client, &format!("/status/{id}"), None).await;
    assert_eq!(status.status, 200);
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"status": "succeeded", "attempts": 1})
    );
    assert_eq!(get_after(&client, "/status/987654", None).await.status, 404);
}

pub(crate) async fn sse_streams_a_tasks_events_until_its_end<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let blocked = get_after(&client, "/try-block", None).await.task_id;
    let reporting = get_after(&client, "/progress", None).await.task_id.unwrap();

    // The stream of the blocked task stays open until the task ends.
    let uri = format!("/events/{}", blocked.expect("x-task-id"));
    let (stream, ()) = tokio::join!(get_after(&client, &uri, None), async {
        within("the signal of the /try-block task", signals.wait_for(1)).await;
        probe.open_gate();
    });
    assert_eq!(stream.status, 200);
    assert_eq!(
        names(&frames(&stream.body)),
        ["queued", "started", "succeeded"]
    );

    let stream = get_after(&client, &format!("/events/{reporting}"), None).await;
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

    assert_eq!(get_after(&client, "/events/987654", None).await.status, 404);
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn sse_resumes_after_last_event_id<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let (id, full) = finished_progress_task(&client, &etiquette).await;
    let started = full[1].0.unwrap().to_string();

    for uri in [format!("/events/{id}"), "/events".to_owned()] {
        let resumed = get_after(&client, &uri, Some(started.as_bytes())).await;
        assert_eq!(resumed.status, 200, "GET {uri}");
        assert_eq!(frames(&resumed.body), full[2..], "GET {uri}");
    }
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn sse_answers_a_malformed_last_event_id_with_400<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let (id, _) = finished_progress_task(&client, &etiquette).await;

    let malformed: [&[u8]; 7] = [b"abc", b"-1", b"+1", b"1.5", b"1 2", b"0x10", b"\xff"];
    for uri in [format!("/events/{id}"), "/events".to_owned()] {
        for value in malformed {
            let reply = get_after(&client, &uri, Some(value)).await;
            let request = format!("GET {uri} with Last-Event-ID {value:?}");
            assert_eq!(reply.status, 400, "{request}");
            assert_eq!(
                reply.body, "invalid Last-Event-ID header: expected a decimal event id",
                "{request}"
            );
            assert_eq!(
                reply.content_type.as_deref(),
                Some("text/plain; charset=utf-8"),
                "{request}"
            );
        }
    }
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn sse_treats_a_blank_last_event_id_as_absent<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let (id, full) = finished_progress_task(&client, &etiquette).await;

    for uri in [format!("/events/{id}"), "/events".to_owned()] {
        for value in [&b""[..], b" ", b" \t "] {
            let reply = get_after(&client, &uri, Some(value)).await;
            let request = format!("GET {uri} with Last-Event-ID {value:?}");
            assert_eq!(reply.status, 200, "{request}");
            assert_eq!(frames(&reply.body), full, "{request}: the whole history");
        }
    }
    within("the release of the queue", etiquette.release()).await;
}

/// Event ids past the last one issued: the next one, one far ahead,
/// `u64::MAX`, and a number too large for a `u64`.
fn ids_past(last: u64) -> [String; 4] {
    [
        (last + 1).to_string(),
        (last + 1_000).to_string(),
        u64::MAX.to_string(),
        "99999999999999999999".to_owned(),
    ]
}

pub(crate) async fn sse_all_events_replay_nothing_after_the_last_issued_id<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let (_, full) = finished_progress_task(&client, &etiquette).await;
    let last = full.last().unwrap().0.unwrap();

    for value in ids_past(last) {
        let reply = get_after(&client, "/events", Some(value.as_bytes())).await;
        assert_eq!(reply.status, 200, "Last-Event-ID {value}");
        assert_eq!(frames(&reply.body), [], "Last-Event-ID {value}");
    }
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn sse_task_events_replay_nothing_after_the_final_event<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let (id, full) = finished_progress_task(&client, &etiquette).await;
    let last = full.last().unwrap().0.unwrap();

    // The final event's own id is what an `EventSource` sends when it
    // reconnects after the stream ended.
    let mut values = ids_past(last).to_vec();
    values.push(last.to_string());
    let mut replayed = Vec::new();
    for value in values {
        let reply = get_after(&client, &format!("/events/{id}"), Some(value.as_bytes())).await;
        assert_eq!(reply.status, 200, "Last-Event-ID {value}");
        replayed.push((value, frames(&reply.body)));
    }
    assert!(
        replayed.iter().all(|(_, frames)| frames.is_empty()),
        "replayed after the final event {last}: {replayed:?}"
    );
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn sse_stream_of_all_events_ends_when_streams_close<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let id = get_after(&client, "/safe", None).await.task_id;
    let id = id.expect("the task id is in x-task-id");
    let task = etiquette.decorum().handle(id.parse().unwrap());
    let task = task.expect("the /safe task is known");
    // The stream is asked for first; the streams close once the task's
    // final event is issued, so that the stream holds the whole history.
    let (stream, ()) = tokio::join!(get_after(&client, "/events", None), async {
        let what = format!("the outcome of the /safe task {id}");
        let _ = within(what, task.outcome()).await;
        etiquette.close_event_streams();
    });
    assert_eq!(stream.status, 200);
    assert_eq!(
        names(&frames(&stream.body)),
        ["queued", "started", "succeeded"]
    );
    within("the release of the queue", etiquette.release()).await;
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
        .add();
    let retried = within("the acceptance of the retried task", retried);
    let retried = retried.await.unwrap();
    let failing = decorum
        .task(|| async { Err::<(), _>("broken") })
        .retry(RetryPolicy::never())
        .add();
    let failing = within("the acceptance of the failing task", failing);
    let failing = failing.await.unwrap();
    let cancelled = decorum.add_task(probe.block());
    let cancelled = within("the acceptance of the blocked task", cancelled);
    let cancelled = cancelled.await.unwrap();
    within("the signal of the blocked task", signals.wait_for(1)).await;
    assert!(cancelled.cancel());
    for (name, task) in [
        ("retried", &retried),
        ("failing", &failing),
        ("cancelled", &cancelled),
    ] {
        let what = format!("the outcome of the {name} task {}", task.id());
        let _ = within(what, task.outcome()).await;
    }

    let stream = |id: etiquette_core::TaskId| {
        let uri = format!("/events/{id}");
        let client = &client;
        async move { frames(&get_after(client, &uri, None).await.body) }
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
    within("the release of the queue", etiquette.release()).await;
}

/// GET `/job?{query}`: a typed `Tally` job added as the query says.
async fn add_job(client: &impl Client, query: &str) -> Reply {
    let reply = get_after(client, &format!("/job?{query}"), None).await;
    assert_eq!(reply.status, 200, "GET /job?{query}: {}", reply.body);
    reply
}

pub(crate) async fn typed_jobs_start_by_priority_and_a_live_key_dedupes<F: Framework>() {
    let (etiquette, (probe, mut signals)) = (queue(1), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    // The one slot is held: every job waits in line.
    get_ok(&client, "/racy").await;
    within("the signal of the /racy task", signals.wait_for(1)).await;
    for query in ["n=1&priority=5", "n=2", "n=3&priority=-1"] {
        assert_eq!(add_job(&client, query).await.body, "OK");
    }
    let first = add_job(&client, "n=4&key=welcome:ada").await;
    assert_eq!(first.body, "OK");
    let again = add_job(&client, "n=5&key=welcome:ada").await;
    assert_eq!(again.body, "DUPLICATE");
    assert_eq!(
        again.task_id, first.task_id,
        "a duplicate gets the live task"
    );
    assert_eq!(etiquette.stats().accepted, 5, "the duplicate was accepted");

    probe.open_gate();
    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(report.completed, 5);
    assert_eq!(probe.tallied(), [3, 2, 4, 1], "not in priority order");
    // The key is free once its task finished, even with intake closed.
    let after = get_after(&client, "/job?n=6&key=welcome:ada", None).await;
    assert_eq!(after.status, 503, "a released queue still refuses");
}

pub(crate) async fn a_delayed_job_is_scheduled_then_runs<F: Framework>() {
    let (etiquette, (probe, _signals)) = (queue(2), Probe::new());
    let client = F::app(etiquette.clone(), probe.clone()).await;
    let added_at = std::time::SystemTime::now();
    let hour = add_job(&client, "n=1&delay_ms=3600000").await;
    let id = hour.task_id.expect("the task id is in x-task-id");
    let status = get_after(&client, &format!("/status/{id}"), None).await;
    let status: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(status["status"], "scheduled", "{status}");
    let due = status["run_at_ms"].as_u64().expect("run_at_ms is a number");
    let added_ms = added_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        (3_600_000..3_610_000).contains(&(due - added_ms)),
        "due {due} ms, added at {added_ms} ms"
    );
    assert_eq!(etiquette.stats().scheduled, 1);

    // A short delay: the release waits for it, then it has run.
    add_job(&client, "n=2&delay_ms=20").await;
    let report = within(
        "the release of the queue, the hour-long job cancelled at its deadline",
        etiquette.release_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_eq!((report.completed, report.cancelled), (1, 1));
    assert_eq!(probe.tallied(), [2]);
}
