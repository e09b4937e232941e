//! The plans the server picks for the statements that look running jobs up
//! by id: the primary key, whatever the statistics say.
//!
//! Statistics gathered while nothing ran (an `ANALYZE` of an idle queue, or
//! right after a bulk add) estimate no running row, and no row with an
//! owner, at all. A statement that names `state = 'running'` then lets the
//! planner pick a partial index of running rows as the cheapest path and
//! filter the ids out of it: it walks every entry of that index, dead ones
//! included, at every outcome. And the outcomes' join of a batch to its
//! rows, each side guessed at one row, becomes a nested loop over the
//! batch for each row found: n by n. A run of 100k jobs fell from 18k to
//! 1.3k jobs/s so (BENCHMARKS.md).

use tokio_postgres::{Client, NoTls};

use crate::completer::without_nested_loops;
use crate::test_support::{Db, db};

/// Finished rows enough that a scan of the table is never the cheapest
/// plan, waiting jobs, and statistics gathered while none ran.
async fn idle_statistics(db: &Db) {
    db.client
        .parts()
        .0
        .batch_execute(
            "INSERT INTO etiquette.jobs (queue, name, args, state, attempt, finished_at)
             SELECT 'default', 'done', 'null', 'succeeded', 1, now()
             FROM generate_series(1, 20000);
             INSERT INTO etiquette.jobs (queue, name, args)
             SELECT 'default', 'waiting', 'null' FROM generate_series(1, 500);
             ANALYZE etiquette.jobs;",
        )
        .await
        .unwrap();
}

/// The plans `sql` gets on `client` with `arguments` (SQL literals),
/// custom and generic, as EXPLAIN prints them.
async fn plans(client: &Client, sql: &str, arguments: &str) -> Vec<String> {
    let mut plans = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        client
            .batch_execute(&format!(
                "SET plan_cache_mode = {mode}; PREPARE looked_up AS {sql}"
            ))
            .await
            .unwrap();
        let lines: Vec<String> = client
            .query(&format!("EXPLAIN EXECUTE looked_up({arguments})"), &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        client
            .batch_execute("DEALLOCATE looked_up; RESET plan_cache_mode")
            .await
            .unwrap();
        plans.push(format!("{mode}:\n{}", lines.join("\n")));
    }
    plans
}

/// A connection made as the completer makes its own.
async fn completer_connection(db: &Db) -> Client {
    let config = without_nested_loops(db.server.url("postgres").parse().unwrap());
    let (client, connection) = config.connect(NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn outcomes_and_heartbeats_look_jobs_up_by_id_even_when_statistics_saw_none_running() {
    let db = db().await;
    idle_statistics(&db).await;
    let statements = &db.statements;
    let completer = completer_connection(&db).await;
    let claimer = db.client.parts().0;
    let ids = "'{20001,20002,20003}'";
    for (name, client, sql, arguments) in [
        (
            "report_many",
            &completer,
            &statements.report_many,
            format!(
                "1, {ids}, '{{1,1,1}}', '{{succeeded,succeeded,succeeded}}', '{{NULL,NULL,NULL}}', '{{0,0,0}}'"
            ),
        ),
        (
            "heartbeat",
            claimer,
            &statements.heartbeat,
            format!("1, 30000, {ids}"),
        ),
        (
            "finish",
            claimer,
            &statements.finish,
            "20001, 1, 1, 'succeeded', NULL".to_owned(),
        ),
        (
            "retry",
            claimer,
            &statements.retry,
            "20001, 1, 1, 'boom', 1000".to_owned(),
        ),
    ] {
        for plan in plans(client, sql, &arguments).await {
            assert!(
                !plan.contains("jobs_running") && !plan.contains("jobs_leases"),
                "{name} walks an index of running rows instead of looking its ids up:\n{plan}"
            );
            assert!(
                !plan.contains("Nested Loop"),
                "{name} joins its batch to the rows found once per row found:\n{plan}"
            );
        }
    }
}

#[tokio::test]
async fn the_claim_walks_the_waiting_jobs_index_whatever_the_statistics_say() {
    let db = db().await;
    let claimer = db.client.parts().0;
    let arguments = "'default', 100, 1, 30000, '{send_email}'";
    // Statistics of a queue where nothing waited, then of one where every
    // row waited (right after a bulk add).
    idle_statistics(&db).await;
    claimer
        .batch_execute(
            "DELETE FROM etiquette.jobs WHERE state = 'available'; ANALYZE etiquette.jobs;
             INSERT INTO etiquette.jobs (queue, name, args)
             SELECT 'default', 'send_email', 'null' FROM generate_series(1, 500);",
        )
        .await
        .unwrap();
    let mut plans_seen = plans(claimer, &db.statements.claim, arguments).await;
    claimer
        .batch_execute(
            "DELETE FROM etiquette.jobs WHERE state = 'succeeded';
             INSERT INTO etiquette.jobs (queue, name, args)
             SELECT 'default', 'send_email', 'null' FROM generate_series(1, 20000);
             ANALYZE etiquette.jobs;",
        )
        .await
        .unwrap();
    plans_seen.extend(plans(claimer, &db.statements.claim, arguments).await);
    for plan in plans_seen {
        assert!(
            plan.contains("jobs_waiting") && !plan.contains("Seq Scan"),
            "the claim does not walk the waiting jobs' index:\n{plan}"
        );
    }
}

/// The outcomes and heartbeats fence on the owner alone: only sound if no
/// row but a running one can have an owner.
#[tokio::test]
async fn only_a_running_job_can_have_an_owner() {
    let db = db().await;
    let client = db.client.parts().0;
    client
        .batch_execute(
            "INSERT INTO etiquette.jobs (queue, name, args, state, attempt, finished_at)
             VALUES ('default', 'done', 'null', 'succeeded', 1, now())",
        )
        .await
        .unwrap();
    let refused = client
        .execute("UPDATE etiquette.jobs SET owner = 1", &[])
        .await
        .expect_err("a finished row took an owner");
    assert_eq!(
        refused.as_db_error().map(|error| error.constraint()),
        Some(Some("jobs_owned_only_while_running")),
        "{refused}"
    );
}
