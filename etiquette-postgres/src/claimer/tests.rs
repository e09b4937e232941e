//! The claimer against a real server: woken by notifications or by its
//! poll, keeping leases alive, and recovering the jobs of a process that
//! died.

use std::collections::HashSet;
use std::time::Duration;

use super::*;
use crate::Schema;
use crate::connection::connect;
use crate::jobs::{Final, finish};
use crate::test_support::{Db, add, db, kinds, running};

fn settings(owner: i64) -> Settings {
    Settings {
        queue: "default".to_owned(),
        owner,
        lease: Duration::from_secs(30),
        heartbeat: Duration::from_secs(10),
        poll: Duration::from_secs(3600),
        rescue: Duration::from_secs(3600),
        local_limit: 8,
        max_running: None,
        listen: true,
    }
}

async fn claimer(setup: &Db, settings: Settings) -> Claimer {
    claimer_and_completer(setup, settings).await.0
}

/// A claimer, and the completer its attempts end through.
async fn claimer_and_completer(setup: &Db, settings: Settings) -> (Claimer, Arc<Completer>) {
    let config: Config = setup.server.url("postgres").parse().unwrap();
    let client = connect(&config).await.unwrap();
    let statements = || Statements::new(&Schema::default());
    let completer = Completer::start(config.clone(), statements(), (settings.owner, false));
    let completer = Arc::new(completer);
    let kinds = Arc::new(kinds());
    let claimer = Claimer::start(
        (client, config),
        statements(),
        settings,
        (kinds, Arc::clone(&completer), None),
    );
    (claimer, completer)
}

async fn next_n(claimer: &mut Claimer, n: usize, bound: Duration, what: &str) -> Vec<Claimed> {
    tokio::time::timeout(bound, async {
        let mut got = Vec::new();
        while got.len() < n {
            got.push(claimer.next().await.expect("the claimer stopped").job);
        }
        got
    })
    .await
    .unwrap_or_else(|_| panic!("waited more than {bound:?} for {what}"))
}

/// Waits until the listener listens: a job added before would only be
/// found by the poll.
async fn listening(claimer: &Claimer) {
    let listener = claimer._listener.as_ref().expect("a listening claimer");
    let connections = Arc::clone(&listener.connections);
    tokio::time::timeout(Duration::from_secs(10), async {
        while connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("waited more than 10 s for the LISTEN connection");
}

#[tokio::test]
async fn an_added_job_is_claimed_at_once_by_notification() {
    let setup = db().await;
    // Polls once an hour: only the notification can bring the job in time.
    let mut claimer = claimer(&setup, settings(1)).await;
    listening(&claimer).await;
    let ids = add(&setup, 3, true).await;
    let got = next_n(&mut claimer, 3, Duration::from_secs(10), "3 notified jobs").await;
    let got: HashSet<i64> = got.iter().map(|job| job.id).collect();
    assert_eq!(got, ids.into_iter().collect());
}

#[tokio::test]
async fn without_notifications_the_poll_finds_the_jobs() {
    let setup = db().await;
    let mut claimer = claimer(
        &setup,
        Settings {
            listen: false,
            poll: Duration::from_millis(100),
            ..settings(1)
        },
    )
    .await;
    let ids = add(&setup, 2, false).await;
    let got = next_n(&mut claimer, 2, Duration::from_secs(10), "2 polled jobs").await;
    assert_eq!(got.iter().map(|job| job.id).collect::<Vec<_>>(), ids);
}

#[tokio::test]
async fn a_claimer_holds_no_more_than_its_local_limit() {
    let setup = db().await;
    add(&setup, 10, false).await;
    let (mut claimer, completer) = claimer_and_completer(
        &setup,
        Settings {
            local_limit: 4,
            poll: Duration::from_millis(50),
            ..settings(1)
        },
    )
    .await;
    let first = next_n(&mut claimer, 4, Duration::from_secs(10), "the first 4 jobs").await;
    // Several polls later, still 4 running: no room was freed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running(&setup.client).await, 4);
    let job = &first[0];
    completer.end(job.id, job.attempt, End::Succeeded);
    next_n(
        &mut claimer,
        1,
        Duration::from_secs(10),
        "a job in the room freed",
    )
    .await;
}

#[tokio::test]
async fn the_jobs_of_a_process_that_died_are_run_by_another() {
    let setup = db().await;
    let ids = add(&setup, 5, false).await;
    let short = Settings {
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(200),
        poll: Duration::from_millis(100),
        rescue: Duration::from_millis(200),
        ..settings(1)
    };
    let mut dying = claimer(&setup, short.clone()).await;
    next_n(
        &mut dying,
        5,
        Duration::from_secs(10),
        "the dying process's jobs",
    )
    .await;
    // Killed: no heartbeat, no outcome, nothing handed back.
    drop(dying);
    let mut survivor = claimer(&setup, Settings { owner: 2, ..short }).await;
    let rescued = next_n(
        &mut survivor,
        5,
        Duration::from_secs(15),
        "the dead process's 5 jobs",
    )
    .await;
    assert!(rescued.iter().all(|job| job.attempt == 2), "{rescued:?}");
    let rescued: HashSet<i64> = rescued.iter().map(|job| job.id).collect();
    assert_eq!(rescued, ids.into_iter().collect());
}

#[tokio::test]
async fn a_long_job_whose_process_heartbeats_is_never_rescued() {
    let setup = db().await;
    let [id] = add(&setup, 1, false).await[..] else {
        unreachable!()
    };
    let short = Settings {
        lease: Duration::from_millis(600),
        heartbeat: Duration::from_millis(150),
        poll: Duration::from_millis(100),
        rescue: Duration::from_millis(100),
        ..settings(1)
    };
    let mut working = claimer(&setup, short.clone()).await;
    next_n(&mut working, 1, Duration::from_secs(10), "the long job").await;
    let mut other = claimer(&setup, Settings { owner: 2, ..short }).await;
    // Five leases long: the other process rescues and polls all along.
    let stolen = tokio::time::timeout(Duration::from_secs(3), other.next()).await;
    assert!(
        stolen.is_err(),
        "a heartbeating job was rescued: {stolen:?}"
    );
    assert!(
        working.lost.try_recv().is_err(),
        "its lease was reported lost"
    );
    assert!(
        finish(
            &setup.client,
            &setup.statements,
            (id, 1, 1),
            Final::Succeeded
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn a_lease_lost_to_a_rescue_is_reported() {
    let setup = db().await;
    let [id] = add(&setup, 1, false).await[..] else {
        unreachable!()
    };
    let mut stalled = claimer(
        &setup,
        Settings {
            heartbeat: Duration::from_millis(100),
            poll: Duration::from_millis(100),
            ..settings(1)
        },
    )
    .await;
    let first = next_n(&mut stalled, 1, Duration::from_secs(10), "the job").await;
    assert_eq!(first[0].attempt, 1);
    // As if the process had stalled past its lease: another process
    // rescued the job (in one statement: a heartbeat between an expiry and
    // a rescue would renew the lease).
    setup
        .client
        .execute(
            "UPDATE etiquette.jobs
             SET state = 'retrying', owner = NULL, lease_until = NULL, run_at = now()
             WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    // Its heartbeat finds the lease gone, or its next claim takes the job
    // again for attempt 2: either way attempt 1 is reported lost.
    let lost = tokio::time::timeout(Duration::from_secs(10), stalled.lost.recv())
        .await
        .expect("waited more than 10 s for the lost lease to be reported");
    assert_eq!(lost, Some((id, 1)));
}

/// A row of a known kind whose arguments no longer decode fails at once
/// with the reason; a row of a kind this process does not know is not
/// claimed at all: it waits for a process that knows it.
#[tokio::test]
async fn a_row_whose_arguments_do_not_decode_fails_at_once_and_an_unknown_kind_waits() {
    let setup = db().await;
    setup
        .client
        .batch_execute(
            "INSERT INTO etiquette.jobs (queue, name, args) VALUES
                 ('default', 'send_sms', '{}'),
                 ('default', 'send_email', '{\"n\": \"not a number\"}');",
        )
        .await
        .unwrap();
    let good = add(&setup, 1, false).await;
    let mut claimer = claimer(
        &setup,
        Settings {
            poll: Duration::from_millis(100),
            ..settings(1)
        },
    )
    .await;
    // The bad row is first in claim order: the claim that took the good
    // one took it before, and the unknown kind before both if it could.
    let ready = next_n(&mut claimer, 1, Duration::from_secs(10), "the good job").await;
    assert_eq!(ready[0].id, good[0], "only the good row is run");
    let failed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let rows = setup
                .client
                .query(
                    "SELECT name, error FROM etiquette.jobs WHERE state = 'failed' ORDER BY id",
                    &[],
                )
                .await
                .unwrap();
            if !rows.is_empty() {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("waited more than 10 s for the undecodable row to fail");
    let failed: Vec<(String, String)> = failed.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "send_email");
    assert!(
        failed[0].1.contains("do not deserialise: invalid type"),
        "{}",
        failed[0].1
    );
    let unknown = setup
        .client
        .query_one(
            "SELECT state, attempt FROM etiquette.jobs WHERE name = 'send_sms'",
            &[],
        )
        .await
        .unwrap();
    let unknown: (String, i32) = (unknown.get(0), unknown.get(1));
    assert_eq!(unknown, ("available".to_owned(), 0));
}
