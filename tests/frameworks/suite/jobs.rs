//! Cases about typed jobs and scheduling through HTTP: priorities, unique keys, delays.

use std::time::Duration;

use etiquette_tests::Probe;

use super::{Client, Framework, Line, Reply, get_after, within};

/// GET `/job?{query}`: a typed `Tally` job added as the query says.
async fn add_job(client: &impl Client, query: &str) -> Reply {
    let reply = get_after(client, &format!("/job?{query}"), None).await;
    assert_eq!(reply.status, 200, "GET /job?{query}: {}", reply.body);
    reply
}

pub(crate) async fn typed_jobs_start_by_priority_and_a_live_key_dedupes<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(1).await, Probe::new());
    let client = F::job_app(etiquette.clone(), probe.clone()).await;
    // The one slot is held: every other job waits.
    add_job(&client, "n=0&hold=true").await;
    within("the signal of the holding job", signals.wait_for(1)).await;
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

    probe.open_gate();
    within("the signals of the four waiting jobs", signals.wait_for(4)).await;
    let report = within("the release of the queue", etiquette.release()).await;
    // The duplicate was not accepted.
    assert_eq!((report.accepted, report.completed), (5, 5), "{report}");
    assert_eq!(probe.tallied(), [0, 3, 2, 4, 1], "not in priority order");
    // The key is free once its task finished, but intake is closed.
    let after = get_after(&client, "/job?n=6&key=welcome:ada", None).await;
    assert_eq!(after.status, 503, "a released queue still refuses");
}

pub(crate) async fn a_delayed_job_is_scheduled_then_runs<F: Framework, S: Line>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let client = F::job_app(etiquette.clone(), probe.clone()).await;
    let added_at = std::time::SystemTime::now();
    let hour = add_job(&client, "n=1&delay_ms=3600000").await;
    let id = hour.task_id.expect("the task id is in x-task-id");
    let status = status_of(&client, &id).await;
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
    if S::KEEPS_TASKS_HERE {
        assert_eq!(etiquette.stats().scheduled, 1);
    }

    // A short delay: it runs once due.
    add_job(&client, "n=2&delay_ms=20").await;
    within("the signal of the job due in 20 ms", signals.wait_for(1)).await;
    let report = within(
        "the release of the queue",
        etiquette.release_timeout(Duration::from_secs(2)),
    )
    .await;
    assert_eq!(report.completed, 1, "{report}");
    assert_eq!(probe.tallied(), [2]);
    if S::KEEPS_TASKS_HERE {
        // The hour-long job is cancelled at the deadline.
        assert_eq!(report.cancelled, 1, "{report}");
    } else {
        // It stays in its row, for a process that works the queue then.
        assert_eq!(report.cancelled, 0, "{report}");
        assert_eq!(status_of(&client, &id).await["status"], "scheduled");
    }
}

/// The status JSON of task `id`.
async fn status_of(client: &impl Client, id: &str) -> serde_json::Value {
    let status = get_after(client, &format!("/status/{id}"), None).await;
    assert_eq!(status.status, 200, "GET /status/{id}: {}", status.body);
    serde_json::from_str(&status.body).unwrap()
}

/// Asserts that task `id`'s status JSON reads `status`, its `field`
/// (`attempt` while it runs, `attempts` once finished) at `count`.
async fn assert_status(client: &impl Client, id: &str, status: &str, (field, count): (&str, u64)) {
    let json = status_of(client, id).await;
    assert_eq!(
        (&json["status"], &json[field]),
        (&serde_json::json!(status), &serde_json::json!(count)),
        "{json}"
    );
}

pub(crate) async fn a_jobs_status_is_served_while_it_runs_and_once_it_finished<
    F: Framework,
    S: Line,
>() {
    let ((etiquette, _keep), (probe, mut signals)) = (S::queue(2).await, Probe::new());
    let client = F::job_app(etiquette.clone(), probe.clone()).await;
    let held = add_job(&client, "n=7&hold=true").await;
    let id = held.task_id.expect("the task id is in x-task-id");
    within("the signal of the holding job", signals.wait_for(1)).await;
    assert_status(&client, &id, "running", ("attempts", 1)).await;
    let unknown = get_after(&client, "/status/987654321", None).await;
    assert_eq!(unknown.status, 404, "an id no queue issued");

    probe.open_gate();
    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(report.completed, 1, "{report}");
    assert_status(&client, &id, "succeeded", ("attempts", 1)).await;
    let after = get_after(&client, "/job?n=8", None).await;
    assert_eq!(after.status, 503, "a released queue refuses");
}
