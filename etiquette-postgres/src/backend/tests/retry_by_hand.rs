//! Retrying by hand a failed or cancelled job on PostgreSQL: one fenced
//! update of its row, the same id, attempt n + 1 (one more when they were
//! used up), claimed at once by a listening process, its events heard
//! everywhere, and every refusal, the unique key's included.

use std::time::Duration;

use etiquette_core::{
    Etiquette, EventKind, Job as _, RetryPolicy, RetryTaskError, TaskId, TaskStatus,
};

use super::job::{Tally, open, runs};
use super::{add, assert_succeeded, connected, found, listening, outcome, process, server, within};
use crate::Postgres;
use crate::testing::TempServer;

/// A process on `server` that adds and retries but runs nothing.
async fn idle(server: &TempServer) -> Etiquette<Postgres> {
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), super::kinds())
            .expect("a valid url")
            .work(false),
    )
    .await;
    Etiquette::builder().build_on(postgres).expect("build")
}

/// A process on `server` that runs jobs, but looks for due ones only once
/// a minute (and, with leases of two minutes, heartbeats and rescues no
/// more often than every 40 s, which also look): within a test's bounds,
/// only a notification wakes it.
async fn deaf_but_listening(server: &TempServer) -> Etiquette<Postgres> {
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), super::kinds())
            .expect("a valid url")
            .poll(Duration::from_secs(60))
            .lease(Duration::from_secs(120)),
    )
    .await;
    Etiquette::builder()
        .max_concurrent_tasks(2)
        .build_on(postgres)
        .expect("build")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_retried_in_one_process_is_claimed_at_once_by_another() {
    let server = server();
    let a = idle(&server).await;
    let b = deaf_but_listening(&server).await;
    listening(&server, 2).await;
    let failed = add(
        &a,
        Tally::new("again").failing(1),
        Some(RetryPolicy::never()),
    )
    .await;
    outcome("the first life", &failed).await.expect_err("fails");
    assert!(matches!(
        failed.status().await,
        Ok(TaskStatus::Failed { attempts: 1, .. })
    ));
    let mut events = a.decorum().subscribe(None);
    let mut heard_in_b = b.decorum().subscribe(None);
    let again = within("the retry", a.decorum().retry_task(failed.id()))
        .await
        .expect("retried");
    assert_eq!(again.id(), failed.id(), "the same id");
    // The handle taken before the retry reads the row: the new life.
    outcome("the second life, by the old handle", &failed)
        .await
        .expect("the second attempt succeeds");
    assert_eq!(runs("again"), [1, 2]);
    assert_succeeded(&again, 2).await;
    assert_succeeded(&found(&b, failed.id()).await, 2).await;
    // Heard in the process that retried it, though it ran in the other.
    let mut kinds = Vec::new();
    within("the new life's events in the retrying process", async {
        while let Some(Ok(event)) = events.next().await {
            if event.task == failed.id() {
                let end = event.kind.is_final();
                kinds.push(event.kind);
                if end {
                    break;
                }
            }
        }
    })
    .await;
    // Each names the job: `queued` from the row the retry read, `started`
    // as the other process announced it (from its claim) and this one heard
    // it, mapped back to the kind it registered.
    let job = Some(Tally::NAME);
    assert_eq!(
        kinds,
        [
            EventKind::Queued { job },
            EventKind::Started { attempt: 2, job },
            EventKind::Succeeded { attempts: 2 },
        ]
    );
    // And in the process that ran it, `queued` as the retrying process
    // announced it (the statement naming it from the row).
    let queued = within("the queued event in the running process", async {
        while let Some(Ok(event)) = heard_in_b.next().await {
            if event.task == failed.id() && event.kind.name() == "queued" {
                return Some(event.kind);
            }
        }
        None
    })
    .await;
    assert_eq!(queued, Some(EventKind::Queued { job }));
    let report = b.release().await;
    assert_eq!((report.failed, report.completed), (1, 1), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_used_up_its_attempts_gets_one_more() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(5)).await;
    let policy = RetryPolicy::exponential(2, Duration::from_millis(20));
    let failed = add(&queue, Tally::new("used-up").failing(9), Some(policy)).await;
    outcome("the first life", &failed).await.expect_err("fails");
    let again = failed.retry().await.expect("retried");
    let error = outcome("the second life", &again).await.expect_err("fails");
    assert_eq!(error.to_string(), "attempt 3 fails on purpose");
    assert_eq!(
        runs("used-up"),
        [1, 2, 3],
        "one attempt more, no retry after it"
    );
    let status = again.status().await.expect("asked");
    assert!(
        matches!(status, TaskStatus::Failed { attempts: 3, .. }),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_is_retried_and_what_cannot_be_is_refused() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(5)).await;
    let decorum = queue.decorum();
    let unknown = TaskId::from(999_999);
    assert_eq!(
        decorum.retry_task(unknown).await.unwrap_err(),
        RetryTaskError::Unknown(unknown)
    );
    // Waiting: nothing to do.
    let later = decorum
        .job(Tally::new("later"))
        .delay(Duration::from_secs(3600));
    let later = later.add().await.expect("added");
    assert_eq!(
        later.retry().await.unwrap_err(),
        RetryTaskError::NotFinished(later.id())
    );
    // Cancelled: back to waiting, due now, its first attempt to make.
    assert!(later.cancel().await.expect("asked"));
    let again = later.retry().await.expect("retried");
    outcome("the cancelled job, retried", &again)
        .await
        .expect("succeeds");
    assert_eq!(runs("later"), [1]);
    assert_succeeded(&later, 1).await;
    // Succeeded.
    assert_eq!(
        later.retry().await.unwrap_err(),
        RetryTaskError::Succeeded(later.id())
    );
    // Running.
    let running = add(&queue, Tally::new("running").gated(), None).await;
    super::until("the gated job to start", || runs("running").len() == 1).await;
    assert_eq!(
        running.retry().await.unwrap_err(),
        RetryTaskError::NotFinished(running.id())
    );
    open("running");
    outcome("the gated job", &running).await.expect("succeeds");
    queue.release().await;
    assert_eq!(
        decorum.retry_task(later.id()).await.unwrap_err(),
        RetryTaskError::Released
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_job_holding_the_key_keeps_the_retry_out() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(5)).await;
    let decorum = queue.decorum();
    let failed = decorum
        .job(Tally::new("keyed").failing(1))
        .unique_key("report-7");
    let failed = failed
        .retry(RetryPolicy::never())
        .add()
        .await
        .expect("added");
    outcome("the keyed job", &failed).await.expect_err("fails");
    let live = decorum
        .job(Tally::new("holder").gated())
        .unique_key("report-7");
    let live = live.add().await.expect("added");
    assert!(!live.was_duplicate(), "the failed job freed its key");
    assert_eq!(
        failed.retry().await.unwrap_err(),
        RetryTaskError::UniqueKeyHeld {
            task: failed.id(),
            holder: live.id(),
        }
    );
    assert!(
        matches!(failed.status().await, Ok(TaskStatus::Failed { .. })),
        "unchanged"
    );
    open("holder");
    outcome("the key's holder", &live).await.expect("succeeds");
    let again = failed.retry().await.expect("the key is free");
    outcome("the keyed job, retried", &again)
        .await
        .expect("succeeds");
    assert_eq!(runs("keyed"), [1, 2]);
}
