//! Cases about the queue seen through HTTP: the bound, the counters, overload, release, status.

use etiquette_core::{Builder, Etiquette};
use etiquette_tests::Probe;

use super::{Framework, get_after, get_ok, queue, within};

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
