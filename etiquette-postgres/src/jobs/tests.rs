//! The statements against a real PostgreSQL server, started per test.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::json;
use tokio_postgres::Client;

use super::*;
use crate::testing::TempServer;
use crate::{Schema, migrate};

const LEASE: Duration = Duration::from_secs(30);

/// A started server and a migrated database in it. The server goes with
/// the value.
struct Db {
    client: Client,
    statements: Statements,
    server: TempServer,
}

async fn db() -> Db {
    let server = TempServer::start().unwrap_or_else(|error| panic!("{error}"));
    let mut client = server.connect("postgres").await.expect("connect");
    let schema = Schema::default();
    migrate(&mut client, &schema).await.expect("migrate");
    Db {
        client,
        statements: Statements::new(&schema),
        server,
    }
}

fn job<'a>(args: &'a Value) -> NewJob<'a> {
    NewJob {
        queue: "default",
        name: "send_email",
        args,
        priority: 0,
        run_at: None,
        max_attempts: 3,
        unique_key: None,
        notify: false,
    }
}

async fn insert_n(db: &Db, n: usize) -> Vec<i64> {
    let mut ids = Vec::new();
    for index in 0..n {
        let args = json!({ "n": index });
        match insert(&db.client, &db.statements, &job(&args))
            .await
            .unwrap()
        {
            Inserted::New(id) => ids.push(id),
            Inserted::Duplicate(id) => panic!("job {id} held no key"),
        }
    }
    ids
}

async fn state_of(db: &Db, id: i64) -> (String, i32) {
    let row = db
        .client
        .query_one(
            "SELECT state, attempt FROM etiquette.jobs WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_job() {
    let db = db().await;
    let ids = insert_n(&db, 200).await;
    let mut claimers = Vec::new();
    for owner in 1..=4_i64 {
        let client = db.server.connect("postgres").await.unwrap();
        let statements = Statements::new(&Schema::default());
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&client, &statements, "default", owner, 7, LEASE)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|job| job.id));
            }
        }));
    }
    let mut claimed = Vec::new();
    for claimer in claimers {
        let mine = tokio::time::timeout(Duration::from_secs(20), claimer)
            .await
            .expect("a claimer took more than 20 s to drain 200 jobs")
            .unwrap();
        claimed.extend(mine);
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, ids.into_iter().collect::<HashSet<_>>());
}

#[tokio::test]
async fn claims_follow_priority_then_due_time_then_id_and_skip_jobs_not_due() {
    let db = db().await;
    let args = json!({});
    let mut ids = Vec::new();
    let later = SystemTime::now() + Duration::from_secs(3600);
    for (priority, run_at) in [
        (5, None),
        (0, None),
        (-1, None),
        (0, Some(later)),
        (0, None),
    ] {
        let job = NewJob {
            priority,
            run_at,
            ..job(&args)
        };
        let Inserted::New(id) = insert(&db.client, &db.statements, &job).await.unwrap() else {
            panic!("no key, no duplicate");
        };
        ids.push(id);
    }
    let claimed = claim(&db.client, &db.statements, "default", 1, 10, LEASE)
        .await
        .unwrap();
    let order: Vec<_> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(order, [ids[2], ids[1], ids[4], ids[0]]);
    assert!(
        claimed
            .iter()
            .all(|job| job.attempt == 1 && job.max_attempts == 3)
    );
    assert_eq!(state_of(&db, ids[3]).await, ("available".to_owned(), 0));
}

#[tokio::test]
async fn a_stale_owner_can_never_overwrite_a_newer_attempt() {
    let db = db().await;
    let [id] = insert_n(&db, 1).await[..] else {
        unreachable!()
    };
    // Owner 1 claims with a lease that expires at once, stops heartbeating.
    let first = claim(&db.client, &db.statements, "default", 1, 1, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first[0].attempt, 1);
    assert_eq!(rescue(&db.client, &db.statements).await.unwrap(), 1);
    assert_eq!(state_of(&db, id).await, ("retrying".to_owned(), 1));
    // Owner 2 claims the second attempt.
    let second = claim(&db.client, &db.statements, "default", 2, 1, LEASE)
        .await
        .unwrap();
    assert_eq!((second[0].id, second[0].attempt), (id, 2));
    // Owner 1 wakes up: nothing it reports lands.
    let stale = (id, 1, 1);
    assert!(
        !finish(&db.client, &db.statements, stale, Final::Succeeded)
            .await
            .unwrap()
    );
    assert!(
        !retry(&db.client, &db.statements, stale, "late", LEASE)
            .await
            .unwrap()
    );
    assert!(
        heartbeat(&db.client, &db.statements, 1, &[id], LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state_of(&db, id).await, ("running".to_owned(), 2));
    // Owner 2's outcome stands.
    assert!(
        finish(
            &db.client,
            &db.statements,
            (id, 2, 2),
            Final::Failed("boom")
        )
        .await
        .unwrap()
    );
    assert_eq!(state_of(&db, id).await, ("failed".to_owned(), 2));
}

#[tokio::test]
async fn a_job_whose_owner_heartbeats_is_never_rescued() {
    let db = db().await;
    let ids = insert_n(&db, 2).await;
    let claimed = claim(&db.client, &db.statements, "default", 1, 2, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // The owner renews one lease before any rescue runs.
    let held = heartbeat(&db.client, &db.statements, 1, &ids[..1], LEASE)
        .await
        .unwrap();
    assert_eq!(held, [(ids[0], 1)]);
    assert_eq!(rescue(&db.client, &db.statements).await.unwrap(), 1);
    assert_eq!(state_of(&db, ids[0]).await, ("running".to_owned(), 1));
    assert_eq!(state_of(&db, ids[1]).await, ("retrying".to_owned(), 1));
    // Its owner may still end it, here cancelled.
    assert!(
        finish(&db.client, &db.statements, (ids[0], 1, 1), Final::Cancelled)
            .await
            .unwrap()
    );
    assert_eq!(state_of(&db, ids[0]).await, ("cancelled".to_owned(), 1));
}

#[tokio::test]
async fn a_rescued_job_with_no_attempt_left_fails() {
    let db = db().await;
    let args = json!({});
    let once = NewJob {
        max_attempts: 1,
        ..job(&args)
    };
    let Inserted::New(id) = insert(&db.client, &db.statements, &once).await.unwrap() else {
        panic!("no key, no duplicate");
    };
    claim(&db.client, &db.statements, "default", 1, 1, Duration::ZERO)
        .await
        .unwrap();
    rescue(&db.client, &db.statements).await.unwrap();
    assert_eq!(state_of(&db, id).await, ("failed".to_owned(), 1));
}

#[tokio::test]
async fn a_retry_frees_the_job_for_any_process_once_due() {
    let db = db().await;
    let [id] = insert_n(&db, 1).await[..] else {
        unreachable!()
    };
    claim(&db.client, &db.statements, "default", 1, 1, LEASE)
        .await
        .unwrap();
    assert!(
        retry(
            &db.client,
            &db.statements,
            (id, 1, 1),
            "busy",
            Duration::from_secs(3600)
        )
        .await
        .unwrap()
    );
    let none = claim(&db.client, &db.statements, "default", 2, 1, LEASE)
        .await
        .unwrap();
    assert!(
        none.is_empty(),
        "a job was claimed before its backoff ended"
    );
    assert!(
        retry(&db.client, &db.statements, (id, 1, 1), "twice", LEASE)
            .await
            .is_ok_and(|moved| !moved)
    );
    db.client
        .execute(
            "UPDATE etiquette.jobs SET run_at = now() WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    let again = claim(&db.client, &db.statements, "default", 2, 1, LEASE)
        .await
        .unwrap();
    assert_eq!((again[0].id, again[0].attempt), (id, 2));
}

#[tokio::test]
async fn a_live_unique_key_returns_the_live_job_and_frees_when_it_finishes() {
    let db = db().await;
    let args = json!({});
    let keyed = NewJob {
        unique_key: Some("welcome:ada"),
        ..job(&args)
    };
    let Inserted::New(id) = insert(&db.client, &db.statements, &keyed).await.unwrap() else {
        panic!("the first insert added nothing");
    };
    assert_eq!(
        insert(&db.client, &db.statements, &keyed).await.unwrap(),
        Inserted::Duplicate(id)
    );
    let other_queue = NewJob {
        queue: "other",
        ..keyed.clone()
    };
    assert!(matches!(
        insert(&db.client, &db.statements, &other_queue)
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    claim(&db.client, &db.statements, "default", 1, 1, LEASE)
        .await
        .unwrap();
    assert_eq!(
        insert(&db.client, &db.statements, &keyed).await.unwrap(),
        Inserted::Duplicate(id),
        "a running job holds its key"
    );
    finish(&db.client, &db.statements, (id, 1, 1), Final::Succeeded)
        .await
        .unwrap();
    assert!(matches!(
        insert(&db.client, &db.statements, &keyed).await.unwrap(),
        Inserted::New(new) if new != id
    ));
}

#[tokio::test]
async fn an_insert_in_a_transaction_exists_only_if_it_commits() {
    let mut db = db().await;
    let args = json!({});
    let transaction = db.client.transaction().await.unwrap();
    insert(&transaction, &db.statements, &job(&args))
        .await
        .unwrap();
    transaction.rollback().await.unwrap();
    let transaction = db.client.transaction().await.unwrap();
    let Inserted::New(id) = insert(&transaction, &db.statements, &job(&args))
        .await
        .unwrap()
    else {
        panic!("no key, no duplicate");
    };
    transaction.commit().await.unwrap();
    let rows = db
        .client
        .query("SELECT id FROM etiquette.jobs", &[])
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(ids, [id]);
}

#[tokio::test]
async fn pruning_deletes_only_rows_finished_before_the_retention_in_batches() {
    let db = db().await;
    db.client
        .batch_execute(
            "INSERT INTO etiquette.jobs (queue, name, args, state, finished_at)
             SELECT 'default', 'old', '{}', 'succeeded', now() - interval '2 hours'
             FROM generate_series(1, 2500);
             INSERT INTO etiquette.jobs (queue, name, args, state, finished_at)
             SELECT 'default', 'recent', '{}', 'failed', now() - interval '1 minute'
             FROM generate_series(1, 5);",
        )
        .await
        .unwrap();
    let live = insert_n(&db, 5).await;
    let pruned = prune(&db.client, &db.statements, Duration::from_secs(3600), 1000)
        .await
        .unwrap();
    assert_eq!(pruned, 2500);
    let left = db
        .client
        .query(
            "SELECT name, count(*) FROM etiquette.jobs GROUP BY name ORDER BY name",
            &[],
        )
        .await
        .unwrap();
    let left: Vec<(String, i64)> = left.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        left,
        [
            ("recent".to_owned(), 5),
            ("send_email".to_owned(), live.len() as i64)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_queue_never_runs_more_than_its_bound_across_processes() {
    const BOUND: i64 = 3;
    let db = db().await;
    insert_n(&db, 40).await;
    // Four processes, each taking as much as it may, until every job ran;
    // each records how many ran at once after each of its claims.
    let mut processes = Vec::new();
    for owner in 1..=4_i64 {
        let mut client = db.server.connect("postgres").await.unwrap();
        let statements = Statements::new(&Schema::default());
        processes.push(tokio::spawn(async move {
            let (mut ran, mut most) = (0, 0);
            let mut idle_rounds = 0;
            while idle_rounds < 50 {
                let batch = claim_bounded(
                    &mut client,
                    &statements,
                    "default",
                    owner,
                    (10, BOUND),
                    LEASE,
                )
                .await
                .unwrap();
                let running: i64 = client
                    .query_one(
                        "SELECT count(*) FROM etiquette.jobs WHERE state = 'running'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                most = most.max(running);
                if batch.is_empty() {
                    idle_rounds += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle_rounds = 0;
                for job in batch {
                    let ids = (job.id, owner, job.attempt);
                    assert!(
                        finish(&client, &statements, ids, Final::Succeeded)
                            .await
                            .unwrap()
                    );
                    ran += 1;
                }
            }
            (ran, most)
        }));
    }
    let (mut ran, mut most) = (0, 0);
    for process in processes {
        let (mine, seen) = tokio::time::timeout(Duration::from_secs(30), process)
            .await
            .expect("a process took more than 30 s to work 40 jobs")
            .unwrap();
        ran += mine;
        most = most.max(seen);
    }
    assert_eq!(ran, 40, "every job ran once");
    assert!(
        most <= BOUND,
        "{most} jobs ran at once, over the bound of {BOUND}"
    );
}

/// Claims up to 10 jobs for `owner`, the queue bound to 3 running.
async fn bounded(db: &mut Db, owner: i64) -> Vec<Claimed> {
    claim_bounded(
        &mut db.client,
        &db.statements,
        "default",
        owner,
        (10, 3),
        LEASE,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_bounded_claim_takes_only_the_room_left_and_ignores_expired_leases() {
    let mut db = db().await;
    insert_n(&db, 10).await;
    assert_eq!(bounded(&mut db, 1).await.len(), 3);
    assert!(bounded(&mut db, 2).await.is_empty(), "the bound was full");
    let first = claim(&db.client, &db.statements, "default", 3, 1, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "an unbounded claim ignores the bound");
    // 4 running, one of them with an expired lease: the room is 3 - 3 = 0.
    assert!(bounded(&mut db, 2).await.is_empty());
    db.client
        .execute("UPDATE etiquette.jobs SET lease_until = now() WHERE owner = 1 AND id = (SELECT min(id) FROM etiquette.jobs)", &[])
        .await
        .unwrap();
    // Now two leases have expired: one place is free.
    assert_eq!(bounded(&mut db, 2).await.len(), 1);
}
