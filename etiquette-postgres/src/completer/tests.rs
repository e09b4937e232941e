//! The completer against a real server: batches, fencing, and outcomes
//! that survive a database restart.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::oneshot;

use super::*;
use crate::Schema;
use crate::test_support::{Db, add, claim_as, db};

const OWNER: i64 = 7;

/// A migrated server with `n` jobs claimed by [`OWNER`], and their
/// `(id, attempt)`.
async fn setup_with_claimed(n: usize) -> (Db, Vec<(i64, i32)>) {
    let setup = db().await;
    add(&setup, n, false).await;
    let limit = i64::try_from(n).unwrap();
    let claimed = claim_as(&setup, OWNER, limit, Duration::from_secs(60)).await;
    let claimed = claimed.iter().map(|job| (job.id, job.attempt)).collect();
    (setup, claimed)
}

fn completer(setup: &Db) -> Completer {
    let config = setup.server.url("postgres").parse().unwrap();
    Completer::start(config, Statements::new(&Schema::default()), (OWNER, false))
}

fn report(completer: &Completer, (id, attempt): (i64, i32), end: End) -> oneshot::Receiver<bool> {
    let (landed, hear) = oneshot::channel();
    completer.report(Report {
        id,
        attempt,
        end,
        landed: Some(landed),
        announce: None,
    });
    hear
}

async fn heard(hear: oneshot::Receiver<bool>) -> bool {
    tokio::time::timeout(Duration::from_secs(20), hear)
        .await
        .expect("waited more than 20 s to hear whether an outcome landed")
        .expect("the completer dropped an outcome")
}

async fn states(setup: &Db) -> Vec<(String, i64)> {
    let rows = setup
        .client
        .query(
            "SELECT state, count(*) FROM etiquette.jobs GROUP BY state ORDER BY state",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

#[tokio::test]
async fn outcomes_given_together_land_together_each_told() {
    let (setup, claimed) = setup_with_claimed(300).await;
    let completer = completer(&setup);
    // Given before the completer first runs (one thread): one batch.
    let hears: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(index, &job)| {
            let end = match index % 3 {
                0 => End::Succeeded,
                1 => End::Failed("bad address".to_owned()),
                _ => End::Retry("busy".to_owned(), Duration::from_secs(3600)),
            };
            report(&completer, job, end)
        })
        .collect();
    for hear in hears {
        assert!(heard(hear).await);
    }
    assert_eq!(
        states(&setup).await,
        [
            ("failed".to_owned(), 100),
            ("retrying".to_owned(), 100),
            ("succeeded".to_owned(), 100)
        ]
    );
    let row = setup
        .client
        .query_one(
            "SELECT count(*) FROM etiquette.jobs
             WHERE state = 'retrying' AND run_at > now() + interval '59 minutes'
                 AND finished_at IS NULL AND error = 'busy'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 100, "retries wait their delay");
    assert_eq!(
        completer.batches.load(Relaxed),
        1,
        "300 outcomes given at once, one statement"
    );
    completer.finish().await;
}

#[tokio::test]
async fn a_stale_attempt_is_refused_in_a_batch_without_harming_the_others() {
    let (setup, claimed) = setup_with_claimed(3).await;
    let completer = completer(&setup);
    let (id, attempt) = claimed[0];
    let stale = report(&completer, (id, attempt + 1), End::Succeeded);
    let fresh: Vec<_> = claimed[1..]
        .iter()
        .map(|&job| report(&completer, job, End::Cancelled))
        .collect();
    assert!(!heard(stale).await, "an attempt it did not hold landed");
    for hear in fresh {
        assert!(heard(hear).await);
    }
    assert_eq!(
        states(&setup).await,
        [("cancelled".to_owned(), 2), ("running".to_owned(), 1)]
    );
}

#[tokio::test]
async fn outcomes_given_while_the_database_restarts_land_once_it_is_back() {
    let (setup, claimed) = setup_with_claimed(2).await;
    let completer = completer(&setup);
    assert!(heard(report(&completer, claimed[0], End::Succeeded)).await);
    setup
        .server
        .restart()
        .unwrap_or_else(|error| panic!("{error}"));
    // The completer's connection died with the restart.
    assert!(heard(report(&completer, claimed[1], End::Succeeded)).await);
    let client = setup.server.connect("postgres").await.unwrap();
    let done: i64 = client
        .query_one(
            "SELECT count(*) FROM etiquette.jobs WHERE state = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(done, 2);
}
