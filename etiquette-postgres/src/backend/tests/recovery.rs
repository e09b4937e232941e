//! What goes wrong around the jobs, and how the backend comes through it:
//! a database restart, an outcome the database refuses, a cancel racing a
//! failed attempt.

use std::time::Duration;

use etiquette_core::{RetryPolicy, TaskStatus};

use super::{Tally, process, runs, server, until, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_database_restart_the_process_claims_again() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(3)).await;
    let before = queue
        .decorum()
        .job(Tally::new("before"))
        .add()
        .await
        .expect("added");
    within("the first job's outcome", before.outcome())
        .await
        .expect("succeeded");
    server.restart().unwrap_or_else(|error| panic!("{error}"));
    let after = within("an add after the restart", async {
        loop {
            match queue.decorum().job(Tally::new("after")).add().await {
                Ok(handle) => return handle,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await;
    within(
        "the outcome of a job added after the restart",
        after.outcome(),
    )
    .await
    .expect("claimed and run after the restart");
    assert_eq!(runs("after"), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_the_database_cannot_store_holds_up_no_other_outcome() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(30)).await;
    let job = Tally {
        fail_first: 1,
        nul_error: true,
        ..Tally::new("nul")
    };
    let bad = queue
        .decorum()
        .job(job)
        .retry(RetryPolicy::never())
        .add()
        .await;
    let bad = bad.expect("added");
    let good = queue
        .decorum()
        .job(Tally::new("fine"))
        .add()
        .await
        .expect("added");
    let error = within("the failing job's outcome", bad.outcome())
        .await
        .expect_err("fails");
    assert_eq!(
        error.to_string(),
        "bad\u{FFFD}byte",
        "stored without its NUL"
    );
    within("the other job's outcome", good.outcome())
        .await
        .expect("succeeded");
    assert_eq!(runs("nul"), [1], "run once, not rescued and run again");
    // Nor can its arguments hold one: the add says so, for good.
    let refused = queue.decorum().job(Tally::new("nul\0tag")).add().await;
    assert!(
        matches!(refused, Err(etiquette_core::AddTaskError::Unstorable(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_while_an_attempt_fails_is_not_lost_to_the_retry() {
    let server = server();
    // Long leases: the heartbeat that would stop the attempt comes too
    // late, and the attempt fails first.
    let lease = Duration::from_secs(30);
    let (a, b) = (
        process(&server, 1, lease).await,
        process(&server, 1, lease).await,
    );
    let job = Tally {
        fail_first: 1,
        sleep_ms: 1_000,
        ..Tally::new("cancelled-while-failing")
    };
    let policy = RetryPolicy::exponential(3, Duration::from_millis(10));
    let handle = a
        .decorum()
        .job(job)
        .retry(policy)
        .add()
        .await
        .expect("added");
    until("the attempt to start", || {
        !runs("cancelled-while-failing").is_empty()
    })
    .await;
    // Asked through whichever process does not run it.
    let (elsewhere, _) = if a.stats().running == 1 {
        (&b, &a)
    } else {
        (&a, &b)
    };
    let seen = elsewhere.decorum().find(handle.id()).await.expect("asked");
    assert!(seen.expect("known").cancel().await.expect("asked"));
    let outcome = within("the cancelled job's outcome", handle.outcome()).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(matches!(handle.status().await, Ok(TaskStatus::Cancelled)));
    assert_eq!(runs("cancelled-while-failing"), [1], "no second attempt");
}
