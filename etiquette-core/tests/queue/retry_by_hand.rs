//! Retrying by hand a typed job that ended failed, timed out or cancelled
//! (`Decorum::retry_task`, `TaskHandle::retry`), on the in-memory queue:
//! the same id, attempt n + 1, one more attempt when they were used up,
//! events, stats and release accounting, and every refusal.

use std::time::Duration;

use etiquette_core::{
    Builder, Etiquette, EventKind, Job, OnFull, RetryPolicy, RetryTaskError, TaskContext,
    TaskHandle, TaskId, TaskStatus,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::support::{Gate, build, drain, hold_a_worker, release_after, within, within_for};

/// Fails while its attempt is at most `failures`, and tells each attempt.
#[derive(Serialize, Deserialize, Default)]
struct Flaky {
    failures: u32,
    #[serde(skip)]
    seen: Option<mpsc::UnboundedSender<(u64, u32)>>,
    /// Waits here before answering, when set.
    #[serde(skip)]
    gate: Option<Gate>,
}

impl Job for Flaky {
    const NAME: &'static str = "flaky";
    type Error = String;

    async fn run(&self, context: TaskContext) -> Result<(), Self::Error> {
        if let Some(seen) = &self.seen {
            let _ = seen.send((context.id().get(), context.attempt()));
        }
        if let Some(gate) = &self.gate {
            gate.pass().await;
        }
        if context.attempt() <= self.failures {
            return Err(format!("attempt {} failed", context.attempt()));
        }
        Ok(())
    }
}

fn flaky(failures: u32) -> (Flaky, mpsc::UnboundedReceiver<(u64, u32)>) {
    let (seen, attempts) = mpsc::unbounded_channel();
    let job = Flaky {
        failures,
        seen: Some(seen),
        gate: None,
    };
    (job, attempts)
}

/// `attempts` attempts, a second apart.
fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::exponential(attempts, Duration::from_secs(1))
}

/// Waits out a task's retries on the paused clock.
async fn outcome(what: &str, task: &TaskHandle) -> Result<(), String> {
    within_for(Duration::from_secs(60), what, task.outcome())
        .await
        .map_err(|error| error.to_string())
}

fn attempts_seen(seen: &mut mpsc::UnboundedReceiver<(u64, u32)>) -> Vec<(u64, u32)> {
    let mut all = Vec::new();
    while let Ok(one) = seen.try_recv() {
        all.push(one);
    }
    all
}

#[tokio::test(start_paused = true)]
async fn a_job_that_failed_for_good_runs_its_next_attempt_under_the_same_id() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(2));
    let (job, mut seen) = flaky(2);
    let task = decorum.job(job).retry(policy(2)).add().await.unwrap();
    let id = task.id();
    assert_eq!(
        outcome("the job's first life", &task).await,
        Err("attempt 2 failed".to_owned())
    );
    // No buffered history: the events from here on.
    let events = decorum.subscribe(None);
    let again = within("the retry", decorum.retry_task(id)).await.unwrap();
    assert_eq!(again.id(), id, "the same id");
    assert!(!again.was_duplicate());
    outcome("the job's second life", &again).await.unwrap();
    assert_eq!(
        attempts_seen(&mut seen),
        [(id.get(), 1), (id.get(), 2), (id.get(), 3)]
    );
    assert!(matches!(
        again.status_now(),
        TaskStatus::Succeeded { attempts: 3 }
    ));
    // Found again by id, and followed by the handle taken before the retry.
    let found = decorum.find(id).await.unwrap().expect("the task is known");
    assert!(matches!(
        found.status_now(),
        TaskStatus::Succeeded { attempts: 3 }
    ));
    assert!(matches!(
        task.status_now(),
        TaskStatus::Succeeded { attempts: 3 }
    ));
    within("the old handle's outcome", task.outcome())
        .await
        .unwrap();
    // Its new life, announced as any task's.
    let report = release_after(&etiquette, "a retried job").await;
    let kinds: Vec<EventKind> = drain("the events after the retry", events)
        .await
        .into_iter()
        .map(|event| event.unwrap())
        .filter(|event| event.task == id)
        .map(|event| event.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            EventKind::Queued { job: Some("flaky") },
            EventKind::Started {
                attempt: 3,
                job: Some("flaky")
            },
            EventKind::Succeeded { attempts: 3 },
        ]
    );
    // Counted accepted again; the first life stays counted as failed.
    assert_eq!(
        (
            report.accepted,
            report.failed,
            report.completed,
            report.retried
        ),
        (2, 1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_that_used_up_its_attempts_gets_one_more_and_no_more() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let (job, mut seen) = flaky(u32::MAX);
    let task = decorum.job(job).retry(policy(2)).add().await.unwrap();
    assert!(outcome("the job's first life", &task).await.is_err());
    let again = task.retry().await.unwrap();
    assert_eq!(
        outcome("the job's second life", &again).await,
        Err("attempt 3 failed".to_owned()),
        "one attempt more, and no retry after it"
    );
    let attempts: Vec<u32> = attempts_seen(&mut seen)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(matches!(
        again.status_now(),
        TaskStatus::Failed { attempts: 3, .. }
    ));
    // And again: attempt 4.
    let third = decorum.retry_task(task.id()).await.unwrap();
    assert_eq!(
        outcome("the job's third life", &third).await,
        Err("attempt 4 failed".to_owned())
    );
    let report = release_after(&etiquette, "two retries by hand").await;
    assert_eq!((report.accepted, report.failed, report.retried), (3, 3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_job_cancelled_with_attempts_left_keeps_its_policy() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let (job, mut seen) = flaky(2);
    // Three attempts, an hour apart: cancelled while waiting for its second.
    let slow = RetryPolicy::exponential(3, Duration::from_secs(3600));
    let task = decorum.job(job).retry(slow).add().await.unwrap();
    let first = within("the first attempt", seen.recv()).await.unwrap();
    assert_eq!(first.1, 1);
    within("the task to wait for its retry", async {
        while !matches!(task.status_now(), TaskStatus::Retrying { .. }) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(task.cancel_now());
    assert!(matches!(task.status_now(), TaskStatus::Cancelled));
    let again = decorum.retry_task(task.id()).await.unwrap();
    assert!(matches!(
        again.status_now(),
        TaskStatus::Queued | TaskStatus::Running { .. }
    ));
    // Attempt 2 fails, and its policy retries it an hour later: attempt 3.
    within_for(
        Duration::from_secs(7200),
        "the second life",
        again.outcome(),
    )
    .await
    .unwrap();
    let attempts: Vec<u32> = attempts_seen(&mut seen)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(attempts, [2, 3]);
    let report = release_after(&etiquette, "a cancelled job retried").await;
    assert_eq!(
        (report.accepted, report.cancelled, report.completed),
        (2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_cancelled_in_line_is_retried_from_its_first_attempt() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let gate = Gate::closed();
    let holder = hold_a_worker(&decorum, &gate).await;
    let (job, mut seen) = flaky(0);
    let task = decorum.job(job).add().await.unwrap();
    assert!(task.cancel().await.unwrap());
    // Retried at once, though the cancelled job still lies in line.
    let again = decorum.retry_task(task.id()).await.unwrap();
    assert!(matches!(again.status_now(), TaskStatus::Queued));
    gate.open();
    within("the held task", holder.outcome()).await.unwrap();
    within("the retried job", again.outcome()).await.unwrap();
    assert_eq!(attempts_seen(&mut seen), [(task.id().get(), 1)]);
    let report = release_after(&etiquette, "a job cancelled in line, retried").await;
    assert_eq!(
        (report.accepted, report.cancelled, report.completed),
        (3, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn what_cannot_be_retried_is_refused_with_its_reason() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let unknown = TaskId::from(999);
    assert_eq!(
        decorum.retry_task(unknown).await.unwrap_err(),
        RetryTaskError::Unknown(unknown)
    );
    // Running.
    let gate = Gate::closed();
    let (mut job, _seen) = flaky(u32::MAX);
    job.gate = Some(gate.clone());
    let running = decorum.job(job).add().await.unwrap();
    within("the job to start", async {
        while !matches!(running.status_now(), TaskStatus::Running { .. }) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert_eq!(
        running.retry().await.unwrap_err(),
        RetryTaskError::NotFinished(running.id())
    );
    gate.open();
    assert!(outcome("the failing job", &running).await.is_err());
    // Retried once: a second retry finds it unfinished.
    let again = running.retry().await.unwrap();
    assert_eq!(
        running.retry().await.unwrap_err(),
        RetryTaskError::NotFinished(running.id())
    );
    assert!(outcome("the job retried", &again).await.is_err());
    // Succeeded.
    let (job, _seen) = flaky(0);
    let succeeded = decorum.job(job).add().await.unwrap();
    outcome("the succeeding job", &succeeded).await.unwrap();
    assert_eq!(
        succeeded.retry().await.unwrap_err(),
        RetryTaskError::Succeeded(succeeded.id())
    );
    // Closure tasks, one-shot and retryable, keep no work.
    let once = decorum
        .add_task(async { Err::<(), _>("no") })
        .await
        .unwrap();
    assert!(within("the closure task", once.outcome()).await.is_err());
    assert_eq!(
        once.retry().await.unwrap_err(),
        RetryTaskError::NotRetriable(once.id())
    );
    let factory = decorum
        .task(|| async { Err::<(), _>("no") })
        .add()
        .await
        .unwrap();
    assert!(within("the factory task", factory.outcome()).await.is_err());
    assert_eq!(
        factory.retry().await.unwrap_err(),
        RetryTaskError::NotRetriable(factory.id())
    );
    assert!(
        factory
            .retry()
            .await
            .unwrap_err()
            .to_string()
            .contains("closure task")
    );
    // Released.
    let report = release_after(&etiquette, "the refusals").await;
    assert_eq!(report.accepted, 5);
    assert_eq!(
        decorum.retry_task(running.id()).await.unwrap_err(),
        RetryTaskError::Released
    );
    assert_eq!(
        decorum.stats().accepted,
        5,
        "a refused retry is not counted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_live_task_holding_the_key_keeps_the_retry_out() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(2));
    let (job, _seen) = flaky(u32::MAX);
    let failed = decorum.job(job).unique_key("report-7").add().await.unwrap();
    assert!(outcome("the keyed job", &failed).await.is_err());
    let gate = Gate::closed();
    let (mut job, _seen) = flaky(0);
    job.gate = Some(gate.clone());
    let live = decorum.job(job).unique_key("report-7").add().await.unwrap();
    assert!(!live.was_duplicate());
    assert_eq!(
        failed.retry().await.unwrap_err(),
        RetryTaskError::UniqueKeyHeld {
            task: failed.id(),
            holder: live.id(),
        }
    );
    assert_eq!(
        decorum.stats().accepted,
        2,
        "a refused retry is not counted"
    );
    gate.open();
    within("the live job", live.outcome()).await.unwrap();
    // The key is free: the retry takes it, and holds it while it lives.
    let gate = Gate::closed();
    let again = failed.retry().await.unwrap();
    let (mut job, _seen) = flaky(0);
    job.gate = Some(gate.clone());
    let duplicate = decorum.job(job).unique_key("report-7").add().await.unwrap();
    assert!(duplicate.was_duplicate());
    assert_eq!(duplicate.id(), failed.id());
    assert!(outcome("the retried keyed job", &again).await.is_err());
    gate.open();
    let report = release_after(&etiquette, "keyed retries").await;
    assert_eq!(
        (report.accepted, report.failed, report.completed),
        (3, 2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_the_retry_and_stats_stay_whole() {
    let (etiquette, decorum) = build(
        Builder::new()
            .max_concurrent_tasks(1)
            .queue_capacity(1)
            .on_full(OnFull::Reject),
    );
    let (job, _seen) = flaky(u32::MAX);
    let failed = decorum.job(job).add().await.unwrap();
    assert!(outcome("the failing job", &failed).await.is_err());
    let gate = Gate::closed();
    let holder = hold_a_worker(&decorum, &gate).await;
    let filler = decorum.add_task(async {}).await.unwrap();
    assert_eq!(failed.retry().await.unwrap_err(), RetryTaskError::Full);
    let stats = decorum.stats();
    assert_eq!((stats.accepted, stats.queued), (3, 1));
    gate.open();
    within("the held task", holder.outcome()).await.unwrap();
    within("the filler", filler.outcome()).await.unwrap();
    let again = failed.retry().await.unwrap();
    assert!(outcome("the retried job", &again).await.is_err());
    let report = release_after(&etiquette, "a retry refused, then taken").await;
    assert_eq!(
        (report.accepted, report.failed, report.completed),
        (4, 2, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_the_queue_no_longer_keeps_is_unknown() {
    let (etiquette, decorum) = build(Builder::new().status_retention(0));
    let (job, _seen) = flaky(u32::MAX);
    let failed = decorum.job(job).add().await.unwrap();
    assert!(outcome("the failing job", &failed).await.is_err());
    assert_eq!(
        failed.retry().await.unwrap_err(),
        RetryTaskError::Unknown(failed.id())
    );
    release_after(&etiquette, "a forgotten task").await;
}

/// A release waits for a retried job's new life, as for any task.
#[tokio::test(start_paused = true)]
async fn a_release_waits_for_the_retried_job() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let gate = Gate::closed();
    let (job, _seen) = flaky(1);
    let failed = decorum
        .job(job)
        .retry(RetryPolicy::never())
        .add()
        .await
        .unwrap();
    assert!(outcome("the failing job", &failed).await.is_err());
    let _holder = hold_a_worker(&decorum, &gate).await;
    let again = failed.retry().await.unwrap();
    let release = etiquette.release();
    tokio::pin!(release);
    assert!(
        futures_util::poll!(release.as_mut()).is_pending(),
        "the release waits for the held task and the retried job"
    );
    gate.open();
    let report = within("the release", release).await;
    assert!(matches!(
        again.status_now(),
        TaskStatus::Succeeded { attempts: 2 }
    ));
    assert_eq!(
        (report.accepted, report.failed, report.completed),
        (3, 1, 2)
    );
}
