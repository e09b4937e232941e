//! The backend end to end, on a real server: typed jobs added through one
//! queue run in whichever process claims them, exactly once while every
//! process lives; statuses and cancels reach them from any process;
//! retries wait in the row; a process that dies or releases loses nothing.

use std::time::Duration;

use etiquette_core::{
    AddTaskError, Etiquette, RetryPolicy, TaskError, TaskHandle, TaskId, TaskStatus,
};

use crate::Postgres;
use crate::testing::TempServer;

mod job;
mod processes;
mod recovery;
mod retry_by_hand;
#[cfg(feature = "sqlx")]
mod sqlx;

use job::{Tally, in_flight, kinds, open, peak, runs};

/// The backend `builder` makes, connected and migrated, failing after 20 s.
async fn connected(builder: crate::PostgresBuilder) -> Postgres {
    let connecting = within("connecting to PostgreSQL and migrating", builder.connect());
    connecting.await.expect("connect and migrate")
}

/// A queue on `server` as one process would build it: at most `limit` jobs
/// at once here, leases of `lease`.
async fn process(server: &TempServer, limit: usize, lease: Duration) -> Etiquette<Postgres> {
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .lease(lease)
            .poll(Duration::from_millis(100)),
    )
    .await;
    Etiquette::builder()
        .max_concurrent_tasks(limit)
        .build_on(postgres)
        .expect("build")
}

/// A fresh server, and one process on it: two jobs at once, leases of
/// 5 s. (The server stops when dropped.)
async fn one_process() -> (TempServer, Etiquette<Postgres>) {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(5)).await;
    (server, queue)
}

/// Two processes on `server`, as [`process`] builds each.
async fn two(
    server: &TempServer,
    limit: usize,
    lease: Duration,
) -> (Etiquette<Postgres>, Etiquette<Postgres>) {
    let a = process(server, limit, lease).await;
    (a, process(server, limit, lease).await)
}

/// `job` added through `queue`, retried as `retry` says if given.
async fn add(
    queue: &Etiquette<Postgres>,
    job: Tally,
    retry: Option<RetryPolicy>,
) -> TaskHandle<Postgres> {
    let decorum = queue.decorum();
    let job = decorum.job(job);
    let job = match retry {
        Some(policy) => job.retry(policy),
        None => job,
    };
    job.add().await.expect("added")
}

/// Job `id`, as `process` finds it.
async fn found(process: &Etiquette<Postgres>, id: TaskId) -> TaskHandle<Postgres> {
    let found = process.decorum().find(id).await.expect("asked");
    found.expect("known")
}

/// The outcome of `what`, the job of `handle`, failing after 20 s.
async fn outcome(what: &str, handle: &TaskHandle<Postgres>) -> Result<(), TaskError> {
    within(what, handle.outcome()).await
}

/// Asserts that the job of `handle` succeeded after `attempts` attempts.
async fn assert_succeeded(handle: &TaskHandle<Postgres>, attempts: u32) {
    let status = handle.status().await.expect("asked");
    assert!(
        matches!(status, TaskStatus::Succeeded { attempts: made } if made == attempts),
        "{status:?}"
    );
}

fn server() -> TempServer {
    TempServer::start().unwrap_or_else(|error| panic!("{error}"))
}

/// Waits for `what`, failing after 20 s.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .unwrap_or_else(|_| panic!("waited more than 20 s for {what}"))
}

/// Waits until `processes` processes listen on `server`: a process's LISTEN
/// connection comes up after its queue is built, and a notification sent
/// before is not heard there (its followers learn only the end, from the
/// row). Fails after 20 s.
async fn listening(server: &TempServer, processes: i64) {
    let client = server.connect("postgres").await.expect("a connection");
    within(&format!("{processes} processes to LISTEN"), async {
        loop {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE query LIKE 'LISTEN %' AND state = 'idle'",
                    &[],
                )
                .await
                .expect("pg_stat_activity");
            if row.get::<_, i64>(0) >= processes {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Waits until `done` holds, checking every 20 ms, failing after 20 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    within(what, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_added_through_one_process_run_once_each_across_two() {
    let server = server();
    let (a, b) = two(&server, 4, Duration::from_secs(5)).await;
    let mut handles = Vec::new();
    for n in 0..40 {
        handles.push(add(&a, Tally::new(&format!("spread-{n}")), None).await);
    }
    for handle in &handles {
        outcome("each job's outcome", handle)
            .await
            .expect("succeeded");
        // Read back from any process.
        let status = b.decorum().status(handle.id()).await.expect("asked");
        assert!(
            matches!(status, Some(TaskStatus::Succeeded { attempts: 1 })),
            "{status:?}"
        );
    }
    for n in 0..40 {
        assert_eq!(runs(&format!("spread-{n}")), [1], "job {n} ran once");
    }
    let (a, b) = (a.release().await, b.release().await);
    assert_eq!(a.accepted + b.accepted, 40, "{a} / {b}");
    assert_eq!(a.completed + b.completed, 40, "{a} / {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_waits_in_its_row_and_the_next_one_succeeds() {
    let (_server, queue) = one_process().await;
    let policy = RetryPolicy::exponential(3, Duration::from_millis(200));
    let handle = add(&queue, Tally::new("retried").failing(1), Some(policy)).await;
    outcome("the retried job's outcome", &handle)
        .await
        .expect("the second attempt succeeds");
    assert_eq!(runs("retried"), [1, 2]);
    assert_succeeded(&handle, 2).await;
    let report = queue.release().await;
    // The failed attempt left the process for its row; the second came back.
    assert_eq!(
        (report.handed_back, report.retried, report.completed),
        (1, 1, 1),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_every_attempt_fails_with_its_last_error() {
    let (_server, queue) = one_process().await;
    let policy = RetryPolicy::exponential(2, Duration::from_millis(50));
    let handle = add(&queue, Tally::new("hopeless").failing(9), Some(policy)).await;
    let error = outcome("the hopeless job's outcome", &handle)
        .await
        .expect_err("fails");
    assert_eq!(error.to_string(), "attempt 2 fails on purpose");
    assert_eq!(runs("hopeless"), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_out_reads_back_as_one_and_an_error_that_says_so_does_not() {
    let (_server, queue) = one_process().await;
    let limit = Duration::from_millis(200);
    let decorum = queue.decorum();
    let slow = decorum.job(Tally::new("slow").sleeping(60_000));
    let slow = slow.timeout(limit).retry(RetryPolicy::never());
    let slow = slow.add().await.expect("added");
    // Its own error, under a time limit it never reaches.
    let stripe = Tally::new("stripe").failing_with("timed out after talking to Stripe");
    let stripe = decorum.job(stripe).timeout(Duration::from_secs(60));
    let stripe = stripe.retry(RetryPolicy::never()).add().await;
    let stripe = stripe.expect("added");
    let error = outcome("the slow job's outcome", &slow)
        .await
        .expect_err("timed out");
    assert!(error.is_timeout(), "{error}");
    // Read back from its row, by a handle found by its id.
    let looked_up = found(&queue, slow.id()).await;
    let read = outcome("the slow job's outcome, looked up", &looked_up).await;
    let read = read.expect_err("timed out");
    assert!(read.is_timeout() && !read.is_cancelled(), "{read}");
    let status = slow.status().await.expect("asked");
    assert!(
        matches!(status, TaskStatus::TimedOut { attempts: 1, limit: read } if read == limit),
        "{status:?}"
    );
    let error = outcome("the Stripe job's outcome", &stripe)
        .await
        .expect_err("fails");
    assert_eq!(error.to_string(), "timed out after talking to Stripe");
    let status = stripe.status().await.expect("asked");
    assert!(
        matches!(&status, TaskStatus::Failed { attempts: 1, error }
            if error.to_string() == "timed out after talking to Stripe"),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_job_cancelled_from_another_process_never_runs() {
    let server = server();
    let (a, b) = two(&server, 2, Duration::from_secs(5)).await;
    let handle = a
        .decorum()
        .job(Tally::new("never"))
        .delay(Duration::from_secs(3600))
        .add()
        .await
        .expect("added");
    let seen = found(&b, handle.id()).await;
    assert!(matches!(
        seen.status().await,
        Ok(TaskStatus::Scheduled { .. })
    ));
    assert!(seen.cancel().await.expect("asked"), "it was waiting");
    assert!(
        !seen.cancel().await.expect("asked"),
        "a second cancel is too late"
    );
    let error = outcome("the cancelled job's outcome", &handle).await;
    let error = error.expect_err("cancelled");
    assert!(error.is_cancelled() && !error.is_timeout(), "{error}");
    assert!(matches!(handle.status().await, Ok(TaskStatus::Cancelled)));
    assert!(runs("never").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_cancelled_from_another_process_stops_there() {
    let server = server();
    let (a, b) = two(&server, 2, Duration::from_millis(600)).await;
    let handle = add(&a, Tally::new("stopped").sleeping(60_000), None).await;
    until("the long job to start", || runs("stopped").len() == 1).await;
    let seen = found(&b, handle.id()).await;
    assert!(seen.cancel().await.expect("asked"));
    outcome("the cancelled job's outcome", &handle)
        .await
        .expect_err("cancelled");
    let read = outcome("the cancelled job's outcome, elsewhere", &seen).await;
    let read = read.expect_err("cancelled");
    assert!(read.is_cancelled(), "{read}");
    assert!(matches!(handle.status().await, Ok(TaskStatus::Cancelled)));
    let (a, b) = (a.release().await, b.release().await);
    assert_eq!(a.cancelled + b.cancelled, 1, "{a} / {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_a_process_cannot_store_are_refused_with_the_reason() {
    let (_server, queue) = one_process().await;
    let refused = queue
        .decorum()
        .job(Tally::new("predicate"))
        .retry(RetryPolicy::default().retry_if(|_| true))
        .add()
        .await;
    match refused {
        Err(AddTaskError::Unstorable(error)) => {
            assert!(error.to_string().contains("retry_if"), "{error}");
        }
        other => panic!("expected Unstorable, got {other:?}"),
    }
    queue.release().await;
    let after = queue.decorum().job(Tally::new("late")).add().await;
    assert!(matches!(after, Err(AddTaskError::Released)), "{after:?}");
}

/// A process whose runtime stops dead (as a `kill -9` would stop it):
/// its heartbeats stop, its lease expires, and another process runs the
/// job it held, as its next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_deadline_hands_unfinished_jobs_back_for_others() {
    let server = server();
    let lease = Duration::from_secs(5);
    let a = process(&server, 1, lease).await;
    let handle = add(&a, Tally::new("handed").sleeping(60_000), None).await;
    until("the long job to start", || runs("handed").len() == 1).await;
    let report = within("the release", a.release_timeout(Duration::from_secs(2))).await;
    assert_eq!(report.cancelled, 1, "{report}");
    // Back in its row, its attempt not counted: claimable at once.
    let status = handle.status().await.expect("asked");
    assert!(matches!(status, TaskStatus::Queued), "{status:?}");
    let b = process(&server, 1, lease).await;
    until("another process to take the job", || {
        runs("handed").len() == 2
    })
    .await;
    assert_eq!(
        runs("handed"),
        [1, 1],
        "the handed-back attempt is not counted"
    );
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_added_in_a_transaction_exists_if_and_only_if_it_commits() {
    let (server, queue) = one_process().await;
    let decorum = queue.decorum();
    let mut client = server.connect("postgres").await.expect("connect");

    let rolled_back = client.transaction().await.expect("begin");
    let ghost = Postgres::add_in(&rolled_back, decorum.job(Tally::new("ghost")))
        .await
        .expect("added within the transaction");
    rolled_back.rollback().await.expect("rollback");
    assert!(decorum.find(ghost.id()).await.expect("asked").is_none());

    let committed = client.transaction().await.expect("begin");
    let real = Postgres::add_in(&committed, decorum.job(Tally::new("real")))
        .await
        .expect("added within the transaction");
    committed.commit().await.expect("commit");
    outcome("the committed job's outcome", &real)
        .await
        .expect("succeeded");
    assert_eq!(runs("real"), [1]);
    assert!(runs("ghost").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_release_nothing_this_process_claimed_stays_running() {
    let server = server();
    let queue = process(&server, 2, Duration::from_secs(30)).await;
    for n in 0..6 {
        let job = Tally::new(&format!("released#{n}")).sleeping(60_000);
        add(&queue, job, None).await;
    }
    until("two jobs to run", || peak("released") == 2).await;
    // Connected first: the rows are read the instant release returns.
    let client = server.connect("postgres").await.expect("connect");
    let release = queue.release_timeout(Duration::from_secs(2));
    let report = within("the release", release).await;
    // Once release returns, every row is written: not one waits for a
    // lease to expire, and no attempt was counted.
    let rows = client
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'available'), max(attempt)
             FROM etiquette.jobs",
            &[],
        )
        .await
        .expect("counted");
    let (available, attempts): (i64, i32) = (rows.get(0), rows.get(1));
    assert_eq!((available, attempts), (6, 0), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adds_of_the_same_moment_share_a_commit_and_each_gets_its_job() {
    let server = server();
    let postgres = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .work(false),
    )
    .await;
    let intake = std::sync::Arc::clone(&postgres.shared.intake.groups);
    let queue = Etiquette::builder().build_on(postgres).expect("build");
    let groups = || intake.load(std::sync::atomic::Ordering::Relaxed);
    let before = groups();
    let mut adding = tokio::task::JoinSet::new();
    for n in 0..200 {
        let decorum = queue.decorum();
        adding.spawn(async move {
            let handle = decorum.job(Tally::new(&format!("grouped-{n}"))).add().await;
            handle.expect("added").id()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = within("the 200 adds", adding.join_next()).await {
        ids.push(id.expect("no panic"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "each add has a job of its own");
    let written = groups() - before;
    assert!(written < 20, "200 adds at once took {written} statements");
    let client = server.connect("postgres").await.expect("a connection");
    let rows = client
        .query_one("SELECT count(*) FROM etiquette.jobs", &[])
        .await
        .expect("counted");
    assert_eq!(rows.get::<_, i64>(0), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_many_stores_all_in_order_or_none() {
    let (server, queue) = one_process().await;
    let decorum = queue.decorum();
    let keyed = |tag: &str| decorum.job(Tally::new(tag)).unique_key("one-welcome");
    let jobs = vec![
        decorum.job(Tally::new("many-0")),
        keyed("many-1"),
        keyed("many-2"),
        decorum
            .job(Tally::new("many-3"))
            .delay(Duration::from_secs(3600)),
    ];
    let handles = within("add_many", Postgres::add_many(jobs))
        .await
        .expect("added");
    let ids: Vec<TaskId> = handles.iter().map(TaskHandle::id).collect();
    assert!(ids[0] < ids[1] && ids[1] < ids[3], "in order: {ids:?}");
    assert_eq!(
        ids[1], ids[2],
        "a key held by a live job answers with that job"
    );
    assert!(!handles[1].was_duplicate() && handles[2].was_duplicate());
    outcome("the first of many", &handles[0])
        .await
        .expect("ran");
    let later = handles[3].status().await.expect("asked");
    assert!(matches!(later, TaskStatus::Scheduled { .. }), "{later:?}");
    // One job the database refuses: none is added.
    let client = server.connect("postgres").await.expect("a connection");
    let count = || async {
        let row = client
            .query_one("SELECT count(*) FROM etiquette.jobs", &[])
            .await;
        row.expect("counted").get::<_, i64>(0)
    };
    let before = count().await;
    let refused = Postgres::add_many(vec![
        decorum.job(Tally::new("fine")),
        decorum.job(Tally::new("nul\0here")),
    ])
    .await;
    assert!(
        matches!(refused, Err(AddTaskError::Unstorable(_))),
        "{refused:?}"
    );
    assert_eq!(count().await, before, "all or none");
    // Within a transaction: as it commits.
    let mut client = server.connect("postgres").await.expect("a connection");
    let transaction = client.transaction().await.expect("begin");
    let jobs = (0..3).map(|n| decorum.job(Tally::new(&format!("rolled-{n}"))));
    let rolled = Postgres::add_many_in(&transaction, jobs)
        .await
        .expect("added");
    transaction.rollback().await.expect("rolled back");
    let gone = queue.decorum().find(rolled[0].id()).await.expect("asked");
    assert!(gone.is_none(), "rolled back with the transaction");
    assert_eq!(count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_runs_nothing_counts_the_jobs_stored_across_processes() {
    let server = server();
    let adder = connected(
        Postgres::builder(&server.url("postgres"), kinds())
            .expect("a valid url")
            .work(false),
    )
    .await;
    let adder = Etiquette::builder().build_on(adder).expect("build");
    let worker = process(&server, 1, Duration::from_secs(5)).await;
    let decorum = adder.decorum();
    let later = RetryPolicy::exponential(3, Duration::from_secs(3600));
    // One waiting an hour for its second attempt, one running (the
    // worker's only slot, held), two due behind it, three scheduled.
    let failing = decorum.job(Tally::new("stored-retrying").failing_with("not yet"));
    let failing = failing.retry(later).add().await.expect("added");
    until("the failing job to wait for its retry", || {
        runs("stored-retrying").len() == 1
    })
    .await;
    within("the failing job's retry to be written", async {
        while !matches!(failing.status().await, Ok(TaskStatus::Retrying { .. })) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let held = decorum.job(Tally::new("stored-held").gated()).add().await;
    held.expect("added");
    until("the held job to run", || runs("stored-held").len() == 1).await;
    for n in 0..2 {
        let due = decorum
            .job(Tally::new(&format!("stored-due-{n}")))
            .add()
            .await;
        due.expect("added");
    }
    for n in 0..3 {
        let job = decorum.job(Tally::new(&format!("stored-later-{n}")));
        job.delay(Duration::from_secs(3600))
            .add()
            .await
            .expect("added");
    }
    let stored = decorum
        .stored_jobs()
        .await
        .expect("asked")
        .expect("counted");
    let counts = (
        stored.queued,
        stored.scheduled,
        stored.running,
        stored.retrying,
    );
    assert_eq!(counts, (2, 3, 1, 1), "{stored:?}");
    assert_eq!(stored.cap, 10_000);
    // This process's own counters see none of them.
    let own = adder.stats();
    assert_eq!(
        (own.running, own.queued, own.scheduled),
        (0, 0, 0),
        "{own:?}"
    );
    // Each count stops at its cap.
    let client = server.connect("postgres").await.expect("a connection");
    let client = crate::connection::Session::new(client);
    let statements = crate::jobs::Statements::new(&crate::Schema::default());
    let capped = crate::jobs::stored_jobs(&client, &statements, "default", 2).await;
    assert_eq!(capped.expect("counted"), [2, 2, 1, 1]);
    open("stored-held");
    drop(worker);
}

/// A kind only the next release of the application knows.
#[derive(serde::Serialize, serde::Deserialize)]
struct OnlyInTheNextRelease;

impl etiquette_core::Job for OnlyInTheNextRelease {
    const NAME: &'static str = "only_in_the_next_release";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: etiquette_core::TaskContext) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A rolling deploy: the new web server adds a kind of job the old workers
/// do not know. They leave it waiting (it neither fails nor uses an
/// attempt there) for a worker of the new release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_claims_only_the_kinds_it_knows_and_leaves_the_others_waiting() {
    let server = server();
    let next_kinds = || {
        let kinds = kinds().register::<OnlyInTheNextRelease>();
        kinds.expect("two kinds")
    };
    let old_worker = process(&server, 4, Duration::from_secs(5)).await;
    let web = connected(
        Postgres::builder(&server.url("postgres"), next_kinds())
            .expect("a valid url")
            .work(false),
    )
    .await;
    let web = Etiquette::builder().build_on(web).expect("build");
    let decorum = web.decorum();
    // First in claim order, then a job the old worker knows: the claim that
    // takes the second would have taken the first if it could.
    let new_kind = decorum.job(OnlyInTheNextRelease).priority(-1).add().await;
    let new_kind = new_kind.expect("added");
    let known = decorum.job(Tally::new("rolling-known")).add().await;
    let known = known.expect("added");
    outcome("the old worker to run the job it knows", &known)
        .await
        .expect("succeeded");
    let status = new_kind.status().await.expect("asked");
    assert!(
        matches!(status, TaskStatus::Queued),
        "the old worker took a job of a kind it does not know: {status:?}"
    );
    let new_worker = connected(
        Postgres::builder(&server.url("postgres"), next_kinds())
            .expect("a valid url")
            .poll(Duration::from_millis(100)),
    )
    .await;
    let new_worker = Etiquette::builder().build_on(new_worker).expect("build");
    outcome("the new release's worker to run the new kind", &new_kind)
        .await
        .expect("succeeded");
    assert_succeeded(&new_kind, 1).await;
    drop((old_worker, new_worker));
}
