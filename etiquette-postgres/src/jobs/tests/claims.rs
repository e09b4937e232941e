//! Claims: never one job twice, in claim order, and the bound across processes.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::json;

use super::super::*;
use super::{LEASE, state_of};
use crate::Schema;
use crate::test_support::{Db, KINDS, add, claim_as, db, job, running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_job() {
    let db = db().await;
    let ids = add(&db, 200, false).await;
    let mut claimers = Vec::new();
    for owner in 1..=4_i64 {
        let client = Session::new(db.server.connect("postgres").await.unwrap());
        let statements = Statements::new(&Schema::default());
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&client, &statements, ("default", KINDS), owner, 7, LEASE)
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
        let Inserted::New(id) = insert(db.client.parts(), &db.statements, &job)
            .await
            .unwrap()
        else {
            panic!("no key, no duplicate");
        };
        ids.push(id);
    }
    let claimed = claim_as(&db, 1, 10, LEASE).await;
    let order: Vec<_> = claimed.iter().map(|job| job.id).collect();
    assert_eq!(order, [ids[2], ids[1], ids[4], ids[0]]);
    assert!(
        claimed
            .iter()
            .all(|job| job.attempt == 1 && job.max_attempts == 3)
    );
    assert_eq!(state_of(&db, ids[3]).await, ("available".to_owned(), 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_queue_never_runs_more_than_its_bound_across_processes() {
    const BOUND: i64 = 3;
    let db = db().await;
    add(&db, 40, false).await;
    // Four processes, each taking as much as it may, until every job ran;
    // each records how many ran at once after each of its claims.
    let mut processes = Vec::new();
    for owner in 1..=4_i64 {
        let mut client = Session::new(db.server.connect("postgres").await.unwrap());
        let statements = Statements::new(&Schema::default());
        processes.push(tokio::spawn(async move {
            let (mut ran, mut most) = (0, 0);
            let mut idle_rounds = 0;
            while idle_rounds < 50 {
                let batch = claim_bounded(
                    &mut client,
                    &statements,
                    ("default", KINDS),
                    owner,
                    (10, BOUND),
                    LEASE,
                )
                .await
                .unwrap();
                most = most.max(running(&client).await);
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
        ("default", KINDS),
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
    add(&db, 10, false).await;
    assert_eq!(bounded(&mut db, 1).await.len(), 3);
    assert!(bounded(&mut db, 2).await.is_empty(), "the bound was full");
    let first = claim_as(&db, 3, 1, Duration::ZERO).await;
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
