//! Cases about typed jobs and scheduling through HTTP: priorities, unique keys, delays.

use std::time::Duration;

use etiquette_tests::Probe;

use super::{Client, Framework, Reply, get_after, get_ok, queue, within};

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
