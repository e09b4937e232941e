//! Leases: fencing by owner and attempt, heartbeats, rescue, retries.

use std::time::Duration;

use serde_json::json;

use super::super::*;
use super::{LEASE, state_of};
use crate::test_support::{add, claim_as, db, job};

#[tokio::test]
async fn a_stale_owner_can_never_overwrite_a_newer_attempt() {
    let db = db().await;
    let [id] = add(&db, 1, false).await[..] else {
        unreachable!()
    };
    // Owner 1 claims with a lease that expires at once, stops heartbeating.
    let first = claim_as(&db, 1, 1, Duration::ZERO).await;
    assert_eq!(first[0].attempt, 1);
    assert_eq!(rescue(&db.client, &db.statements).await.unwrap(), 1);
    assert_eq!(state_of(&db, id).await, ("retrying".to_owned(), 1));
    // Owner 2 claims the second attempt.
    let second = claim_as(&db, 2, 1, LEASE).await;
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
    let ids = add(&db, 2, false).await;
    let claimed = claim_as(&db, 1, 2, Duration::ZERO).await;
    assert_eq!(claimed.len(), 2);
    // The owner renews one lease before any rescue runs.
    let held = heartbeat(&db.client, &db.statements, 1, &ids[..1], LEASE)
        .await
        .unwrap();
    assert_eq!(held, [((ids[0], 1), false)]);
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
    let Inserted::New(id) = insert(db.client.parts(), &db.statements, &once)
        .await
        .unwrap()
    else {
        panic!("no key, no duplicate");
    };
    claim_as(&db, 1, 1, Duration::ZERO).await;
    rescue(&db.client, &db.statements).await.unwrap();
    assert_eq!(state_of(&db, id).await, ("failed".to_owned(), 1));
}

#[tokio::test]
async fn a_retry_frees_the_job_for_any_process_once_due() {
    let db = db().await;
    let [id] = add(&db, 1, false).await[..] else {
        unreachable!()
    };
    claim_as(&db, 1, 1, LEASE).await;
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
    let none = claim_as(&db, 2, 1, LEASE).await;
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
    let again = claim_as(&db, 2, 1, LEASE).await;
    assert_eq!((again[0].id, again[0].attempt), (id, 2));
}
