//! Cases about the live dashboard, mounted at `/etiquette` in one line:
//! its snapshot, cancelling allowed and not, its routes, its stream, and
//! what it hides.

use std::future::Future;
use std::time::Duration;

use etiquette_core::backend::Backend;
use etiquette_core::dashboard::ACTION_HEADER;
use etiquette_core::{Dashboard, Decorum, TaskContext};
use etiquette_tests::{JobQuery, Probe};

use super::{Client, Framework, Line, Reply, get_after, queue, send, within};

/// The action header as the dashboard's page sends it.
const FROM_THE_PAGE: &[(&str, &[u8])] = &[(ACTION_HEADER, b"cancel")];

/// Polls `check` until it gives a value, failing after 5 seconds with
/// `what` it waited for.
async fn until<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    within(what, async {
        loop {
            if let Some(found) = check().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// The dashboard's snapshot, as JSON.
async fn snapshot(client: &impl Client) -> serde_json::Value {
    let reply = get_after(client, "/etiquette/api/snapshot", None).await;
    assert_eq!(
        reply.status, 200,
        "GET /etiquette/api/snapshot: {}",
        reply.body
    );
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    serde_json::from_str(&reply.body).unwrap()
}

/// Waits until the snapshot lists task `id` in `list` (`running`,
/// `failures`, `ended`, …), and returns that entry.
async fn listed(client: &impl Client, list: &str, id: u64) -> serde_json::Value {
    let what = format!("task {id} in the dashboard's {list}");
    until(&what, || async {
        let snapshot = snapshot(client).await;
        let items = snapshot[list].as_array()?.clone();
        // Running tasks and retries have an `id`; outcomes are events, of
        // a `task`.
        items.into_iter().find(|item| {
            item["id"].as_u64() == Some(id) && item.get("task").is_none()
                || item["task"].as_u64() == Some(id)
        })
    })
    .await
}

/// Adds a typed job that holds its slot until the probe's gate opens, and
/// waits until it runs: its id.
async fn holding_job<B: Backend>(
    decorum: &Decorum<B>,
    probe: &Probe,
    signals: &mut etiquette_tests::Signals,
) -> (etiquette_core::TaskHandle<B>, u64) {
    let query = JobQuery {
        n: 1,
        hold: Some(true),
        ..JobQuery::default()
    };
    let (handle, _) = within(
        "adding a holding job",
        etiquette_tests::add_job(decorum, probe, query),
    )
    .await
    .unwrap();
    within("the signal of the holding job", signals.wait_for(1)).await;
    let id = handle.id().get();
    (handle, id)
}

fn cancel_uri(id: u64) -> String {
    format!("/etiquette/api/tasks/{id}/cancel")
}

pub(crate) async fn dashboard_shows_a_running_job_and_cancels_it_when_allowed<
    F: Framework,
    S: Line,
>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let client = F::dashboard_app(Dashboard::new(&etiquette).allow_cancel(true)).await;
    let decorum = etiquette.decorum();
    let (handle, id) = holding_job(&decorum, &probe, &mut signals).await;

    let running = listed(&client, "running", id).await;
    assert_eq!(running["attempt"], 1, "{running}");
    // Named by its kind, from its start on to its end and its page.
    assert_eq!(running["job"], "tally", "{running}");
    let snapshot = snapshot(&client).await;
    assert_eq!(snapshot["options"]["cancel"], true);
    assert_eq!(snapshot["queue"]["max_concurrent_tasks"], 2);
    assert_eq!(snapshot["stats"]["running"], 1, "{snapshot}");
    assert!(snapshot["history"]["rows"].is_array(), "{snapshot}");

    let cancelled = send(&client, "POST", &cancel_uri(id), FROM_THE_PAGE).await;
    assert_eq!(
        (cancelled.status, cancelled.content_type.as_deref()),
        (200, Some("application/json")),
        "{}",
        cancelled.body
    );
    let body: serde_json::Value = serde_json::from_str(&cancelled.body).unwrap();
    assert_eq!(body, serde_json::json!({ "id": id, "cancelled": true }));
    let outcome = within("the cancelled job's outcome", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert!(error.is_cancelled(), "{error}");
    assert_eq!(error.to_string(), "cancelled");
    let status = within("the cancelled job's status", handle.status()).await;
    assert_eq!(status.unwrap().name(), "cancelled");

    // Its page: the status the backend gives, and the events the board saw.
    let ended = listed(&client, "ended", id).await;
    assert_eq!(ended["event"], "cancelled", "{ended}");
    assert_eq!(
        (&ended["job"], &ended["retriable"]),
        (&"tally".into(), &true.into()),
        "{ended}"
    );
    let task = get_after(&client, &format!("/etiquette/api/tasks/{id}"), None).await;
    assert_eq!(task.status, 200, "{}", task.body);
    let task: serde_json::Value = serde_json::from_str(&task.body).unwrap();
    assert_eq!(task["status"]["status"], "cancelled", "{task}");
    assert_eq!(
        (&task["job"], &task["retriable"]),
        (&"tally".into(), &true.into()),
        "{task}"
    );
    let events: Vec<&str> = task["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert!(events.ends_with(&["started", "cancelled"]), "{events:?}");

    let again = send(&client, "POST", &cancel_uri(id), FROM_THE_PAGE).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let unknown = send(&client, "POST", &cancel_uri(987_654_321), FROM_THE_PAGE).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "no task 987654321")
    );
    let unknown = get_after(&client, "/etiquette/api/tasks/987654321", None).await;
    assert_eq!(unknown.status, 404);

    probe.open_gate();
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn dashboard_refuses_to_cancel_unless_allowed<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let read_only = F::dashboard_app(Dashboard::new(&etiquette)).await;
    let allowing = F::dashboard_app(Dashboard::new(&etiquette).allow_cancel(true)).await;
    let decorum = etiquette.decorum();
    let (handle, id) = holding_job(&decorum, &probe, &mut signals).await;

    let refused = send(&read_only, "POST", &cancel_uri(id), FROM_THE_PAGE).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("allow_cancel(true)"),
        "{}",
        refused.body
    );
    assert_eq!(snapshot(&read_only).await["options"]["cancel"], false);
    // Allowed, but not from the page: a form posted from another site.
    let forged = send(&allowing, "POST", &cancel_uri(id), &[]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains(ACTION_HEADER), "{}", forged.body);
    let unknown = send(&read_only, "POST", &cancel_uri(987_654_321), FROM_THE_PAGE).await;
    assert_eq!(unknown.status, 403, "refused before any lookup");

    // The job runs on, to its end.
    let status = within("the job's status", handle.status()).await.unwrap();
    assert_eq!(status.name(), "running");
    probe.open_gate();
    within("the job's outcome", handle.outcome()).await.unwrap();
    within("the release of the queue", etiquette.release()).await;
}

/// GET `uri` and its status, content type and one header.
async fn head_of(client: &impl Client, method: &'static str, uri: &str) -> Reply {
    send(client, method, uri, &[]).await
}

pub(crate) async fn dashboard_serves_its_page_and_routes<F: Framework>() {
    let etiquette = queue(2);
    let client = F::dashboard_app(Dashboard::new(&etiquette)).await;

    // At the mount point, the page's links name it: relative to
    // `/etiquette`, they would leave it.
    let page = head_of(&client, "GET", "/etiquette").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.body
            .contains(r#"<script src="./etiquette/dashboard.js" defer></script>"#),
        "{}",
        page.body
    );
    let policy = page.content_security_policy.unwrap_or_default();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let script = head_of(&client, "GET", "/etiquette/dashboard.js").await;
    assert_eq!(
        script.content_type.as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("EventSource"));
    let style = head_of(&client, "GET", "/etiquette/dashboard.css").await;
    assert_eq!(
        style.content_type.as_deref(),
        Some("text/css; charset=utf-8")
    );

    for (method, uri, status, allow) in [
        ("GET", "/etiquette/nothing-here", 404, None),
        ("GET", "/etiquette/api/tasks/abc", 400, None),
        ("POST", "/etiquette", 405, Some("GET, HEAD")),
        ("GET", "/etiquette/api/tasks/5/cancel", 405, Some("POST")),
        ("HEAD", "/etiquette/api/stream", 405, Some("GET")),
    ] {
        let reply = head_of(&client, method, uri).await;
        assert_eq!(
            (reply.status, reply.allow.as_deref()),
            (status, allow),
            "{method} {uri}: {}",
            reply.body
        );
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/plain; charset=utf-8"),
            "{method} {uri}"
        );
    }
    within("the release of the queue", etiquette.release()).await;
}

/// A task reporting its progress, then failing with an error that must not
/// be shown where errors are hidden.
async fn reports_then_fails(context: TaskContext) -> Result<(), &'static str> {
    context.report(0.5, "mailing ada@example.com");
    Err("smtp password=hunter2 rejected")
}

pub(crate) async fn dashboard_streams_a_snapshot_then_its_changes_and_hides_what_it_must<
    F: Framework,
>() {
    let etiquette = queue(2);
    let shown = F::dashboard_app(Dashboard::new(&etiquette)).await;
    let hidden = F::dashboard_app(
        Dashboard::new(&etiquette)
            .show_errors(false)
            .show_progress_messages(false),
    )
    .await;
    let decorum = etiquette.decorum();
    let task = decorum
        .task_with_context(reports_then_fails)
        .retry(etiquette_core::RetryPolicy::never())
        .add()
        .await
        .unwrap();
    within("the failing task's outcome", task.outcome())
        .await
        .unwrap_err();
    let id = task.id().get();

    let failure = listed(&shown, "failures", id).await;
    assert_eq!(
        failure["error"], "smtp password=hunter2 rejected",
        "{failure}"
    );
    let failure = listed(&hidden, "failures", id).await;
    assert_eq!(failure["error_hidden"], true, "{failure}");
    let page = get_after(&hidden, &format!("/etiquette/api/tasks/{id}"), None).await;
    for secret in ["hunter2", "ada@"] {
        assert!(!page.body.contains(secret), "{}", page.body);
    }
    assert!(page.body.contains(r#""fraction":0.5"#), "{}", page.body);

    // The stream: a snapshot first; it ends once the queue closes its
    // event streams.
    etiquette.close_event_streams();
    for client in [&shown, &hidden] {
        let stream = get_after(client, "/etiquette/api/stream", None).await;
        assert_eq!(stream.status, 200);
        let content_type = stream.content_type.unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let first = stream.body.split("\n\n").next().unwrap_or_default();
        assert!(first.contains("event: snapshot"), "{}", stream.body);
        assert!(first.contains(&format!(r#""task":{id}"#)), "{first}");
    }
    let stream = get_after(&hidden, "/etiquette/api/stream", None).await;
    assert!(!stream.body.contains("hunter2"), "{}", stream.body);
    within("the release of the queue", etiquette.release()).await;
}

fn retry_uri(id: u64) -> String {
    format!("/etiquette/api/tasks/{id}/retry")
}

/// Cancels the holding job `id` through `client` and waits for its end.
async fn cancelled_through<B: Backend>(
    client: &impl Client,
    handle: &etiquette_core::TaskHandle<B>,
    id: u64,
) {
    let cancelled = send(client, "POST", &cancel_uri(id), FROM_THE_PAGE).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let outcome = within("the cancelled job's outcome", handle.outcome()).await;
    assert_eq!(outcome.unwrap_err().to_string(), "cancelled");
}

pub(crate) async fn dashboard_retries_a_cancelled_job_when_allowed<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let dashboard = Dashboard::new(&etiquette)
        .allow_cancel(true)
        .allow_retry(true);
    let client = F::dashboard_app(dashboard).await;
    assert_eq!(snapshot(&client).await["options"]["retry"], true);
    let decorum = etiquette.decorum();
    let (handle, id) = holding_job(&decorum, &probe, &mut signals).await;
    cancelled_through(&client, &handle, id).await;

    // Allowed, but not from the page.
    let forged = send(&client, "POST", &retry_uri(id), &[]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains(ACTION_HEADER), "{}", forged.body);

    let retried = send(&client, "POST", &retry_uri(id), FROM_THE_PAGE).await;
    assert_eq!(
        (retried.status, retried.content_type.as_deref()),
        (200, Some("application/json")),
        "{}",
        retried.body
    );
    let body: serde_json::Value = serde_json::from_str(&retried.body).unwrap();
    assert_eq!(body, serde_json::json!({ "id": id, "retried": true }));
    // It runs again, its second attempt, under the same id.
    within("the retried job to run again", signals.wait_for(1)).await;
    let running = listed(&client, "running", id).await;
    assert_eq!(running["attempt"], 2, "{running}");
    let page = get_after(&client, &format!("/etiquette/api/tasks/{id}"), None).await;
    let page: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(page["status"]["status"], "running", "{page}");
    // Running again: nothing to retry.
    let again = send(&client, "POST", &retry_uri(id), FROM_THE_PAGE).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("not finished"), "{}", again.body);

    probe.open_gate();
    let found = within("finding the retried job", decorum.find(handle.id())).await;
    let found = found.unwrap().expect("the job is known");
    within("the retried job's outcome", found.outcome())
        .await
        .unwrap();
    let status = within("the retried job's status", found.status()).await;
    let status = status.unwrap();
    assert_eq!((status.name(), status.attempts()), ("succeeded", 2));
    let ended = listed(&client, "ended", id).await;
    assert_eq!(ended["event"], "succeeded", "{ended}");

    // Succeeded: not retriable, and said why.
    let succeeded = send(&client, "POST", &retry_uri(id), FROM_THE_PAGE).await;
    assert_eq!(succeeded.status, 409, "{}", succeeded.body);
    assert!(succeeded.body.contains("succeeded"), "{}", succeeded.body);
    let unknown = send(&client, "POST", &retry_uri(987_654_321), FROM_THE_PAGE).await;
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "no task 987654321")
    );
    within("the release of the queue", etiquette.release()).await;
}

pub(crate) async fn dashboard_refuses_to_retry_unless_allowed<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let cancelling = F::dashboard_app(Dashboard::new(&etiquette).allow_cancel(true)).await;
    let decorum = etiquette.decorum();
    let (handle, id) = holding_job(&decorum, &probe, &mut signals).await;
    cancelled_through(&cancelling, &handle, id).await;

    let refused = send(&cancelling, "POST", &retry_uri(id), FROM_THE_PAGE).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("allow_retry(true)"),
        "{}",
        refused.body
    );
    assert_eq!(snapshot(&cancelling).await["options"]["retry"], false);
    let unknown = send(&cancelling, "POST", &retry_uri(987_654_321), FROM_THE_PAGE).await;
    assert_eq!(unknown.status, 403, "refused before any lookup");
    let get = send(&cancelling, "GET", &retry_uri(id), &[]).await;
    assert_eq!((get.status, get.allow.as_deref()), (405, Some("POST")));

    // Still cancelled: nothing ran again.
    let status = within("the job's status", handle.status()).await.unwrap();
    assert_eq!(status.name(), "cancelled");
    probe.open_gate();
    within("the release of the queue", etiquette.release()).await;
    assert_eq!(probe.tallied(), [1], "the job ran once");
}

/// On a durable backend the page shows the jobs stored across every
/// process (a scheduled job sits in the table, not in this process's
/// counters); on the in-memory queue there is no such section.
pub(crate) async fn dashboard_counts_the_jobs_stored_across_processes<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, _signals)) = (S::queue(1).await, Probe::new());
    let client = F::dashboard_app(Dashboard::new(&etiquette)).await;
    let query = JobQuery {
        n: 1,
        delay_ms: Some(3_600_000),
        ..JobQuery::default()
    };
    let decorum = etiquette.decorum();
    let added = etiquette_tests::add_job(&decorum, &probe, query);
    within("adding a job due in an hour", added).await.unwrap();
    let stored = within("the jobs stored, counted", decorum.stored_jobs()).await;
    let stored = stored.expect("asked");
    if S::KEEPS_TASKS_HERE {
        assert_eq!(
            stored, None,
            "the in-memory queue's stats are the whole truth"
        );
        // Its first count is made at once, with the first sample.
        let snapshot = until("the first sample", || async {
            let snapshot = snapshot(&client).await;
            (!snapshot["history"]["rows"].as_array()?.is_empty()).then_some(snapshot)
        })
        .await;
        assert!(snapshot["stored"].is_null(), "{snapshot}");
        return;
    }
    let stored = stored.expect("a durable backend counts");
    assert_eq!((stored.queued, stored.scheduled), (0, 1), "{stored:?}");
    let shown = until("the scheduled job among the jobs stored", || async {
        let snapshot = snapshot(&client).await;
        (snapshot["stored"]["scheduled"] == 1).then_some(snapshot)
    })
    .await;
    assert_eq!(shown["stored"]["queued"], 0, "{shown}");
    assert_eq!(shown["stored"]["cap"], 10_000, "{shown}");
}
