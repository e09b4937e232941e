//! What goes wrong around the jobs, and how the backend comes through it:
//! a database restart, an outcome the database refuses, an outcome written
//! late, a cancel racing a failed attempt, a table that would fill with
//! finished rows.

use std::time::Duration;

use etiquette_core::{Etiquette, EventKind, RetryPolicy, TaskStatus};

use super::{
    Tally, add, assert_succeeded, connected, found, in_flight, kinds, listening, open, outcome,
    peak, process, runs, server, two, until, within,
};
use crate::Postgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_database_restart_the_process_claims_again() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(3)).await;
    let before = add(&queue, Tally::new("before"), None).await;
    outcome("the first job's outcome", &before)
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
    outcome("the outcome of a job added after the restart", &after)
        .await
        .expect("claimed and run after the restart");
    assert_eq!(runs("after"), [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_the_database_cannot_store_holds_up_no_other_outcome() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(30)).await;
    let job = Tally::new("nul").failing_with_a_nul();
    let bad = add(&queue, job, Some(RetryPolicy::never())).await;
    let good = add(&queue, Tally::new("fine"), None).await;
    let error = outcome("the failing job's outcome", &bad)
        .await
        .expect_err("fails");
    assert_eq!(
        error.to_string(),
        "bad\u{FFFD}byte",
        "stored without its NUL"
    );
    outcome("the other job's outcome", &good)
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

/// While a session holds advisory lock 4242, writing a job's success
/// fails, as a write stuck behind a lock fails under a `lock_timeout`; the
/// completer tries it again, with a growing pause, until it is let go.
/// (Only successes: a rescue, which writes `retrying`, passes.)
const HOLD_SUCCESSES: &str = "
    CREATE FUNCTION hold_successes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT pg_try_advisory_xact_lock_shared(4242) THEN
            RAISE EXCEPTION 'the test holds successes back' USING ERRCODE = 'lock_not_available';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER hold_successes BEFORE UPDATE ON etiquette.jobs FOR EACH ROW
        WHEN (NEW.state = 'succeeded') EXECUTE FUNCTION hold_successes();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_outcome_is_written_late_keeps_its_lease_and_runs_once() {
    let server = server();
    let lease = Duration::from_millis(600);
    let a = process(&server, 1, lease).await;
    let client = within("the test's connection", server.connect("postgres")).await;
    let client = client.expect("connect");
    client.batch_execute(HOLD_SUCCESSES).await.expect("hold");
    client
        .execute("SELECT pg_advisory_lock(4242)", &[])
        .await
        .expect("locked");
    let handle = add(&a, Tally::new("written-late"), None).await;
    until("the job to run in A", || runs("written-late") == [1]).await;
    until("its attempt to end in A", || a.stats().running == 0).await;
    // Another process, claiming and rescuing all along.
    let b = process(&server, 1, lease).await;
    // Five leases: had A let the lease go when the attempt ended, B would
    // have rescued the job and run it again by now.
    let rescued = tokio::time::timeout(
        lease * 5,
        until("a second run", || runs("written-late").len() > 1),
    )
    .await;
    assert!(
        rescued.is_err(),
        "rescued and run again: {:?}",
        runs("written-late")
    );
    let row = client
        .query_one(
            "SELECT state, attempt, lease_until > now() FROM etiquette.jobs WHERE id = $1",
            &[&i64::try_from(handle.id().get()).expect("a row id")],
        )
        .await
        .expect("read");
    let row: (String, i32, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        row,
        ("running".to_owned(), 1, true),
        "held back, its lease renewed"
    );
    client
        .execute("SELECT pg_advisory_unlock(4242)", &[])
        .await
        .expect("let go");
    outcome("the late outcome", &handle)
        .await
        .expect("succeeded");
    assert_succeeded(&handle, 1).await;
    assert_eq!(runs("written-late"), [1], "ran once");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_asked_while_an_attempt_fails_is_not_lost_to_the_retry() {
    let server = server();
    // Long leases: the heartbeat that would stop the attempt comes too
    // late, and the attempt fails first.
    let (a, b) = two(&server, 1, Duration::from_secs(30)).await;
    let job = Tally::new("cancelled-while-failing")
        .failing(1)
        .sleeping(1_000);
    let policy = RetryPolicy::exponential(3, Duration::from_millis(10));
    let handle = add(&a, job, Some(policy)).await;
    until("the attempt to start", || {
        !runs("cancelled-while-failing").is_empty()
    })
    .await;
    // Asked through whichever process does not run it.
    let elsewhere = if a.stats().running == 1 { &b } else { &a };
    assert!(
        found(elsewhere, handle.id())
            .await
            .cancel()
            .await
            .expect("asked")
    );
    // Followed from there too: its stream ends with the cancel.
    let subscription = elsewhere.decorum().subscribe_task(handle.id(), None).await;
    let mut events = subscription.expect("asked").expect("known");
    let outcome = outcome("the cancelled job's outcome", &handle).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(matches!(handle.status().await, Ok(TaskStatus::Cancelled)));
    assert_eq!(runs("cancelled-while-failing"), [1], "no second attempt");
    let mut last = None;
    within("the followed stream to end", async {
        while let Some(event) = events.next().await {
            last = Some(event.expect("no lag").kind);
        }
    })
    .await;
    assert_eq!(last, Some(EventKind::Cancelled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_pruned_after_their_retention_and_waiting_ones_stay() {
    let server = server();
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .poll(Duration::from_millis(100))
            .prune(Duration::from_millis(300), Duration::from_millis(50)),
    )
    .await;
    let queue = Etiquette::builder().build_on(postgres).expect("build");
    let done = add(&queue, Tally::new("pruned"), None).await;
    outcome("the job to prune", &done).await.expect("succeeded");
    let decorum = queue.decorum();
    let later = decorum.job(Tally::new("kept"));
    let later = later.delay(Duration::from_secs(3600));
    let waiting = later.add().await.expect("added");
    within("the finished job's row to be pruned", async {
        while queue
            .decorum()
            .find(done.id())
            .await
            .expect("asked")
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let kept = queue.decorum().find(waiting.id()).await.expect("asked");
    assert!(kept.is_some(), "a job still waiting is never pruned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_run_in_one_process_streams_its_events_to_another() {
    let server = server();
    let a = process(&server, 1, Duration::from_secs(5)).await;
    // Another process, working another queue: it never runs the job, and
    // follows it by id.
    let b = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .queue("elsewhere"),
    )
    .await;
    let b = Etiquette::builder().build_on(b).expect("build");
    listening(&server, 2).await;
    let job = Tally::new("followed").gated();
    let handle = add(&a, job, None).await;
    until("the followed job to start in A", || runs("followed") == [1]).await;
    let subscription = b.decorum().subscribe_task(handle.id(), None).await;
    let mut events = subscription.expect("asked").expect("known");
    open("followed");
    let mut kinds = Vec::new();
    within("B's stream of the job's events to end", async {
        while let Some(event) = events.next().await {
            kinds.push(event.expect("no lag").kind);
        }
    })
    .await;
    let progress = EventKind::Progress {
        fraction: Some(0.5),
        message: Some("half way".to_owned()),
    };
    let ends = [progress, EventKind::Succeeded { attempts: 1 }];
    assert!(kinds.ends_with(&ends), "{kinds:?}");
    // A finished job is followed too: its stream is its final event.
    let mut again = b.decorum().subscribe_task(handle.id(), None).await;
    let again = again.as_mut().expect("asked").as_mut().expect("known");
    let last = within("the finished job's stream", again.next()).await;
    let last = last.expect("one event").expect("no lag").kind;
    assert_eq!(last, EventKind::Succeeded { attempts: 1 });
    assert!(within("its end", again.next()).await.is_none());
}

/// A notification this process never heard (sent while its LISTEN
/// connection was away, or never sent: the job ran in a process with
/// notifications off) must not leave a follower waiting for ever: the
/// job's row ends its stream within a poll interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_end_was_never_announced_still_ends_its_followers_streams() {
    let server = server();
    let quiet = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .notify(false)
            .poll(Duration::from_millis(100)),
    )
    .await;
    let quiet = Etiquette::builder().build_on(quiet).expect("build");
    // Listening, working another queue, polling every 100 ms.
    let b = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .queue("elsewhere")
            .poll(Duration::from_millis(100)),
    )
    .await;
    let b = Etiquette::builder().build_on(b).expect("build");
    let handle = add(&quiet, Tally::new("unannounced").gated(), None).await;
    until("the unannounced job to start", || {
        runs("unannounced") == [1]
    })
    .await;
    let subscription = b.decorum().subscribe_task(handle.id(), None).await;
    let mut events = subscription.expect("asked").expect("known");
    open("unannounced");
    let mut kinds = Vec::new();
    within("B's stream of the unannounced job to end", async {
        while let Some(event) = events.next().await {
            kinds.push(event.expect("no lag").kind);
        }
    })
    .await;
    assert_eq!(kinds, [EventKind::Succeeded { attempts: 1 }], "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_across_processes_holds_whatever_each_process_allows() {
    let server = server();
    let bounded = || async {
        let postgres = connected(
            Postgres::builder(&server.url("postgres"), kinds())
                .expect("a valid url")
                .poll(Duration::from_millis(50))
                .max_running_across_processes(2),
        )
        .await;
        Etiquette::builder()
            .max_concurrent_tasks(4)
            .build_on(postgres)
            .expect("build")
    };
    let (a, b) = (bounded().await, bounded().await);
    let mut handles = Vec::new();
    for n in 0..8 {
        let job = Tally::new(&format!("bounded#{n}")).sleeping(150);
        handles.push(add(&a, job, None).await);
    }
    for handle in &handles {
        outcome("each bounded job's outcome", handle)
            .await
            .expect("succeeded");
    }
    // Eight slots in all, two allowed at once across both processes.
    assert_eq!(peak("bounded"), 2, "the bound, reached and never passed");
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_connections_are_terminated_the_process_listens_and_works_again() {
    let server = server();
    // Never polls, nor heartbeats, within the test: only a notification
    // wakes its claims.
    let hour = Duration::from_secs(3600);
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .poll(hour)
            .lease(24 * hour),
    )
    .await;
    let queue = Etiquette::builder()
        .max_concurrent_tasks(2)
        .build_on(postgres)
        .expect("build");
    let running = add(&queue, Tally::new("through-termination").gated(), None).await;
    until("the gated job to start", || {
        runs("through-termination") == [1]
    })
    .await;
    let admin = server
        .connect("postgres")
        .await
        .expect("an admin connection");
    let terminated = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE pid <> pg_backend_pid() AND datname = 'postgres'",
            &[],
        )
        .await
        .expect("terminated");
    assert!(
        terminated.len() >= 3,
        "intake, claimer, listener, completer"
    );
    // The job running meanwhile ends, and its outcome is written by the
    // completer's new connection.
    open("through-termination");
    outcome("the outcome of the job that ran through it", &running)
        .await
        .expect("succeeded");
    assert_eq!(runs("through-termination"), [1], "not run again");
    within("a LISTEN connection to be back", async {
        loop {
            let listening = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'",
                    &[],
                )
                .await
                .expect("counted");
            if listening.get::<_, i64>(0) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The first add may find the intake's connection gone (and say so);
    // it then connects again.
    let add_again = |tag: &'static str| {
        within("an add after the termination", async {
            loop {
                match queue.decorum().job(Tally::new(tag)).add().await {
                    Ok(handle) => return handle,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    };
    let first = add_again("woken-once").await;
    outcome("a job added after the termination", &first)
        .await
        .expect("succeeded");
    // Claimed by nothing but its notification: the wake-up of the
    // reconnection was used by the first.
    let second = add_again("woken-twice").await;
    outcome("a job woken by its notification alone", &second)
        .await
        .expect("succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_a_job_run_elsewhere_is_followed_by_its_row() {
    let server = server();
    let quiet = |queue: &str| {
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .queue(queue)
            .notify(false)
            .poll(Duration::from_millis(100))
    };
    let a = connected(quiet("default")).await;
    let a = Etiquette::builder().build_on(a).expect("build");
    // Another process, working another queue: it never runs the job.
    let b = connected(quiet("elsewhere")).await;
    let b = Etiquette::builder().build_on(b).expect("build");
    let job = Tally::new("followed-quietly").gated().failing(1);
    let policy = RetryPolicy::exponential(2, Duration::from_secs(2));
    let handle = add(&a, job, Some(policy)).await;
    until("the followed job to start in A", || {
        runs("followed-quietly") == [1]
    })
    .await;
    let subscription = b.decorum().subscribe_task(handle.id(), None).await;
    let mut events = subscription.expect("asked").expect("known");
    open("followed-quietly");
    let mut kinds = Vec::new();
    within("B's stream of the job's events to end", async {
        while let Some(event) = events.next().await {
            kinds.push(event.expect("no lag").kind);
        }
    })
    .await;
    // Its row waits 2 s to retry: read meanwhile, every 100 ms.
    assert!(
        matches!(kinds.first(), Some(EventKind::Retrying { attempt: 1, .. })),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&EventKind::Succeeded { attempts: 2 }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_ending_after_its_job_was_claimed_again_here_writes_nothing() {
    let server = server();
    let queue = process(&server, 2, Duration::from_millis(600)).await;
    let policy = RetryPolicy::exponential(3, Duration::from_millis(10));
    let handle = add(&queue, Tally::new("stubborn").stubborn(), Some(policy)).await;
    until("the first attempt to start", || runs("stubborn") == [1]).await;
    // Its lease taken away, as a rescue does when a process stalled past
    // it: this process hears it lost at its next heartbeat, and claims the
    // job again while the first attempt, deaf to the cancel, still runs.
    let admin = server
        .connect("postgres")
        .await
        .expect("an admin connection");
    admin
        .execute(
            "UPDATE etiquette.jobs SET state = 'retrying', owner = NULL,
                 lease_until = NULL, run_at = now()
             WHERE state = 'running'",
            &[],
        )
        .await
        .expect("rescued");
    until("the second attempt to start here", || {
        runs("stubborn") == [1, 2]
    })
    .await;
    open("stubborn");
    until("the first attempt to end", || in_flight("stubborn") == 1).await;
    // The first attempt's failure belongs to no lease: the second runs on.
    open("stubborn#2");
    outcome("the second attempt's outcome", &handle)
        .await
        .expect("succeeded");
    let status = handle.status().await.expect("asked");
    assert!(
        matches!(status, TaskStatus::Succeeded { attempts: 2 }),
        "{status:?}"
    );
    assert_eq!(runs("stubborn"), [1, 2], "no third attempt");
}
