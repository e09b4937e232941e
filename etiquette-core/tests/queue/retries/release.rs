//! Release and retries: a release waits for a pending retry to run, and
//! its deadline cancels a task waiting to retry.

use etiquette_core::{Etiquette, RetryPolicy, TaskStatus};

use super::{Attempts, SECOND, add_retried, secs, transient_once, within_schedule};
use crate::support::within;

#[tokio::test(start_paused = true)]
async fn release_waits_for_a_pending_retry_to_run() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let attempts = Attempts::new();
    add_retried(
        &etiquette.decorum(),
        RetryPolicy::exponential(3, 5 * SECOND),
        attempts.recording(transient_once),
    )
    .await;
    let report = within_schedule(
        "the release of the queue after a pending retry",
        etiquette.release(),
    )
    .await;
    assert_eq!(attempts.times(), secs(&[0, 5]));
    assert_eq!(
        (report.completed, report.retried, report.cancelled),
        (1, 1, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn release_deadline_cancels_a_task_waiting_to_retry() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let attempts = Attempts::new();
    let waiting = add_retried(
        &decorum,
        RetryPolicy::exponential(3, 30 * SECOND),
        attempts.always_failing(),
    )
    .await;
    let quick = add_retried(
        &decorum,
        RetryPolicy::exponential(3, 30 * SECOND),
        || async {},
    )
    .await;
    let report = within_schedule(
        "the release, past its 10 s deadline, of a task waiting to retry",
        etiquette.release_timeout(10 * SECOND),
    )
    .await;
    assert_eq!(attempts.start.elapsed(), 10 * SECOND);
    assert_eq!(
        attempts.times(),
        secs(&[0]),
        "no attempt after the deadline"
    );
    assert!(matches!(waiting.status_now(), TaskStatus::Cancelled));
    let outcome = within(
        "the outcome of the task cancelled while waiting to retry",
        waiting.outcome(),
    )
    .await;
    assert!(outcome.unwrap_err().is_cancelled());
    assert!(matches!(
        quick.status_now(),
        TaskStatus::Succeeded { attempts: 1 }
    ));
    assert_eq!(report.accepted, 2);
    assert_eq!(
        (report.completed, report.cancelled, report.retried),
        (1, 1, 1)
    );
    assert_eq!(
        report.completed + report.failed + report.cancelled,
        report.accepted
    );
}
