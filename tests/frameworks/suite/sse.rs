//! Cases about task events served as Server-Sent Events: streams that end, resumption with `Last-Event-ID`, hostile headers.

use std::time::Duration;

use etiquette_core::{Etiquette, RetryPolicy};
use etiquette_tests::Probe;

use super::{Client, Framework, Line, get_after, queue, within};

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
    assert!(cancelled.cancel_now());
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

/// On any backend: a job's stream ends with its outcome, exactly once,
/// whether the job finishes before or after the stream subscribes.
pub(crate) async fn sse_streams_a_jobs_events_until_its_outcome<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(1).await, Probe::new());
    let client = F::job_app(etiquette.clone(), probe.clone()).await;
    let held = get_after(&client, "/job?n=1&hold=true", None).await;
    let id = held.task_id.expect("the task id is in x-task-id");
    within("the signal of the holding job", signals.wait_for(1)).await;
    let uri = format!("/events/{id}");
    let opened = async { probe.open_gate() };
    let (reply, ()) = tokio::join!(get_after(&client, &uri, None), opened);
    assert_eq!(reply.status, 200, "GET {uri}: {}", reply.body);
    let frames = frames(&reply.body);
    let names = names(&frames);
    assert_eq!(names.last(), Some(&"succeeded"), "{}", reply.body);
    let finals = names.iter().filter(|name| **name == "succeeded").count();
    assert_eq!(finals, 1, "{}", reply.body);
}
