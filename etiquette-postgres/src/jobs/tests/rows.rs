//! Rows: unique keys, transactional inserts, pruning.

use std::time::Duration;

use serde_json::json;

use super::super::*;
use super::LEASE;
use crate::test_support::{add, claim_as, db, job};

#[tokio::test]
async fn a_live_unique_key_returns_the_live_job_and_frees_when_it_finishes() {
    let db = db().await;
    let args = json!({});
    let keyed = NewJob {
        unique_key: Some("welcome:ada"),
        ..job(&args)
    };
    let Inserted::New(id) = insert(db.client.parts(), &db.statements, &keyed)
        .await
        .unwrap()
    else {
        panic!("the first insert added nothing");
    };
    assert_eq!(
        insert(db.client.parts(), &db.statements, &keyed)
            .await
            .unwrap(),
        Inserted::Duplicate(id)
    );
    let other_queue = NewJob {
        queue: "other",
        ..keyed.clone()
    };
    assert!(matches!(
        insert(db.client.parts(), &db.statements, &other_queue)
            .await
            .unwrap(),
        Inserted::New(_)
    ));
    claim_as(&db, 1, 1, LEASE).await;
    assert_eq!(
        insert(db.client.parts(), &db.statements, &keyed)
            .await
            .unwrap(),
        Inserted::Duplicate(id),
        "a running job holds its key"
    );
    finish(&db.client, &db.statements, (id, 1, 1), Final::Succeeded)
        .await
        .unwrap();
    assert!(matches!(
        insert(db.client.parts(), &db.statements, &keyed).await.unwrap(),
        Inserted::New(new) if new != id
    ));
}

#[tokio::test]
async fn an_insert_in_a_transaction_exists_only_if_it_commits() {
    let mut db = db().await;
    let args = json!({});
    let transaction = db.client.transaction().await.unwrap();
    insert(
        (&transaction, &Prepared::default()),
        &db.statements,
        &job(&args),
    )
    .await
    .unwrap();
    transaction.rollback().await.unwrap();
    let transaction = db.client.transaction().await.unwrap();
    let Inserted::New(id) = insert(
        (&transaction, &Prepared::default()),
        &db.statements,
        &job(&args),
    )
    .await
    .unwrap() else {
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
    let live = add(&db, 5, false).await;
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
