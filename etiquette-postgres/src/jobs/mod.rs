//! The statements of a job's life on PostgreSQL: insert, claim, heartbeat,
//! finish or retry (fenced by owner and attempt), and the rescue of
//! expired leases. Plain SQL, prepared once per connection
//! ([`Session`], [`Prepared`]).
//!
//! * **Claim**: `FOR UPDATE SKIP LOCKED` over the waiting rows in claim
//!   order (priority, then due time, then id), so two claimers never get
//!   one job; the claim counts the attempt and takes a lease.
//! * **Fencing**: a running job is moved on only by the process that owns
//!   its lease and only for the attempt it claimed, so a process that lost
//!   its lease (paused, partitioned) can never overwrite what a newer
//!   attempt did.
//! * **Rescue**: any process may rescue a lease that expired (its owner
//!   stopped heartbeating): no leader, no hour-long guess; a job whose
//!   owner heartbeats is never rescued, however long it runs.
//! * **The bound, cluster-wide**: a queue's claims can hold it to N jobs
//!   running at once across every process (`claim_bounded`).
//! * **Pruning**: finished rows go after a retention period, in batches.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, GenericClient};

use crate::connection::{Prepared, Session};

mod lookups;
mod sql;
#[cfg(feature = "sqlx")]
mod sqlx;

pub(crate) use lookups::{
    Cancel, Retried, Stored, cancel, duration_ms, retry_by_hand, stored, stored_jobs, stored_many,
};
pub(crate) use sql::{NOTIFY_MANY, Statements};
#[cfg(feature = "sqlx")]
pub(crate) use sqlx::{insert_sqlx, refused_value_sqlx};

/// A job to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewJob<'a> {
    /// The queue it waits in.
    pub(crate) queue: &'a str,
    /// Its kind's `Job::NAME`.
    pub(crate) name: &'a str,
    /// Its arguments, serialised.
    pub(crate) args: &'a Value,
    /// Lower is claimed first.
    pub(crate) priority: i16,
    /// `None`: due after `delay`, by the database's clock.
    pub(crate) run_at: Option<SystemTime>,
    /// With no `run_at`: due this long after it is stored, by the
    /// database's clock (so that the processes' clocks do not matter).
    pub(crate) delay: Option<Duration>,
    /// Attempts it may make, the first included.
    pub(crate) max_attempts: i32,
    /// At most one live job of the queue holds it.
    pub(crate) unique_key: Option<&'a str>,
    /// The rest of its retry policy (see the migration).
    pub(crate) retry: &'a Value,
    /// Each attempt's time limit.
    pub(crate) timeout: Option<Duration>,
    /// Whether to announce it to listeners (off for transaction-pooling
    /// proxies, where LISTEN cannot work: processes then poll).
    pub(crate) notify: bool,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// A new job, under this id.
    New(i64),
    /// Nothing: the live job with this id holds the unique key.
    Duplicate(i64),
}

/// A job claimed for one attempt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Claimed {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) args: Value,
    /// This attempt's number, from 1.
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
    pub(crate) priority: i16,
    /// Each attempt's time limit.
    pub(crate) timeout: Option<Duration>,
    /// The rest of its retry policy (see the migration).
    pub(crate) retry: Value,
}

// One outcome at a time, as the tests use them to show fencing; the
// backend writes outcomes in batches (`report_many`, in the completer).

/// How an attempt ended a job for good.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Final<'a> {
    Succeeded,
    Failed(&'a str),
    Cancelled,
}

/// A duration as the milliseconds the statements take.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Inserts a job, through any client or transaction: within the
/// application's transaction, the job exists if and only if it commits.
pub(crate) async fn insert(
    (client, prepared): (&impl GenericClient, &Prepared),
    statements: &Statements,
    job: &NewJob<'_>,
) -> Result<Inserted, Error> {
    loop {
        let timeout = job.timeout.map(millis);
        let delay = job.delay.map(millis);
        let params: [&(dyn ToSql + Sync); 11] = [
            &job.queue,
            &job.name,
            job.args,
            &job.priority,
            &job.run_at,
            &job.max_attempts,
            &job.unique_key,
            job.retry,
            &timeout,
            &delay,
            &statements.channel,
        ];
        // The plain insert takes all but the channel.
        let (statement, params) = if job.notify {
            (&statements.insert_and_notify, &params[..])
        } else {
            (&statements.insert, &params[..10])
        };
        let statement = prepared.get(client, statement).await?;
        let inserted = client.query_opt(&statement, params).await?;
        if let Some(row) = inserted {
            return Ok(Inserted::New(row.get(0)));
        }
        // A live job holds the key; it may finish before we look, and then
        // the key is free again: try the insert once more.
        let live_with_key = prepared.get(client, &statements.live_with_key).await?;
        let live = client
            .query_opt(&live_with_key, &[&job.queue, &job.unique_key])
            .await?;
        if let Some(row) = live {
            return Ok(Inserted::Duplicate(row.get(0)));
        }
    }
}

/// Inserts `jobs`, all of `queue`, in one statement: all or none of them
/// (within the application's transaction, as it commits). Each is answered
/// in order; a job held off by a live one with its unique key is looked up
/// (or inserted after all, if that one finished meanwhile).
pub(crate) async fn insert_many(
    (client, prepared): (&impl GenericClient, &Prepared),
    statements: &Statements,
    (queue, notify): (&str, bool),
    jobs: &[NewJob<'_>],
) -> Result<Vec<Inserted>, Error> {
    let names: Vec<&str> = jobs.iter().map(|job| job.name).collect();
    let args: Vec<&Value> = jobs.iter().map(|job| job.args).collect();
    let priorities: Vec<i16> = jobs.iter().map(|job| job.priority).collect();
    let run_at: Vec<Option<SystemTime>> = jobs.iter().map(|job| job.run_at).collect();
    let attempts: Vec<i32> = jobs.iter().map(|job| job.max_attempts).collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|job| job.unique_key).collect();
    let retries: Vec<&Value> = jobs.iter().map(|job| job.retry).collect();
    let timeouts: Vec<Option<f64>> = jobs.iter().map(|job| job.timeout.map(millis)).collect();
    let delays: Vec<Option<f64>> = jobs.iter().map(|job| job.delay.map(millis)).collect();
    let channel = notify.then_some(statements.channel.as_str());
    let params: [&(dyn ToSql + Sync); 11] = [
        &queue,
        &names,
        &args,
        &priorities,
        &run_at,
        &attempts,
        &keys,
        &retries,
        &timeouts,
        &delays,
        &channel,
    ];
    let insert_many = prepared.get(client, &statements.insert_many).await?;
    let rows = client.query(&insert_many, &params).await?;
    let mut answers = Vec::with_capacity(jobs.len());
    for (row, job) in rows.iter().zip(jobs) {
        answers.push(if row.get(1) {
            Inserted::New(row.get(0))
        } else {
            insert((client, prepared), statements, job).await?
        });
    }
    Ok(answers)
}

/// Claims up to `limit` due jobs of `queue` of one of `kinds` for `owner`,
/// each for one attempt under a lease of `lease`.
pub(crate) async fn claim(
    client: &Session,
    statements: &Statements,
    (queue, kinds): (&str, &[&str]),
    owner: i64,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, Error> {
    let rows = client
        .query(
            &statements.claim,
            &[&queue, &limit, &owner, &millis(lease), &kinds],
        )
        .await?;
    Ok(claimed(rows))
}

/// Separates the queues' claim locks from the application's advisory
/// locks and from the migrations' ("eq").
const QUEUE_LOCK_CLASS: i32 = 0x6571;

/// [`claim`], holding the queue to `max_running` jobs running at once
/// across every process that works it: a distributed semaphore. Claims of
/// one queue take turns on an advisory lock held to their commit, so each
/// counts the running jobs the previous ones claimed; completions take no
/// lock. A lease that expired no longer counts.
pub(crate) async fn claim_bounded(
    client: &mut Session,
    statements: &Statements,
    (queue, kinds): (&str, &[&str]),
    owner: i64,
    (limit, max_running): (i64, i64),
    lease: Duration,
) -> Result<Vec<Claimed>, Error> {
    let lock = client
        .statement("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await?;
    let claim = client.statement(&statements.claim_bounded).await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(&lock, &[&QUEUE_LOCK_CLASS, &queue])
        .await?;
    let rows = transaction
        .query(
            &claim,
            &[&queue, &limit, &owner, &millis(lease), &kinds, &max_running],
        )
        .await?;
    transaction.commit().await?;
    Ok(claimed(rows))
}

fn claimed(rows: Vec<tokio_postgres::Row>) -> Vec<Claimed> {
    rows.into_iter()
        .map(|row| Claimed {
            id: row.get(0),
            name: row.get(1),
            args: row.get(2),
            attempt: row.get(3),
            max_attempts: row.get(4),
            priority: row.get(5),
            timeout: row.get::<_, Option<f64>>(6).and_then(duration_ms),
            retry: row.get(7),
        })
        .collect()
}

/// Renews `owner`'s leases on `ids` for `lease` from now, in one
/// statement; returns the `(id, attempt)` it still holds (the others were
/// rescued, or finished), each with whether a cancel asked it to stop
/// (from any process): one statement a heartbeat, not two.
pub(crate) async fn heartbeat(
    client: &Session,
    statements: &Statements,
    owner: i64,
    ids: &[i64],
    lease: Duration,
) -> Result<Vec<((i64, i32), bool)>, Error> {
    let rows = client
        .query(&statements.heartbeat, &[&owner, &millis(lease), &ids])
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect())
}

/// Ends attempt `attempt` of job `id` for good, if `owner` still holds it;
/// `false` if not (its lease was lost: a newer outcome stands).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn finish(
    client: &Session,
    statements: &Statements,
    (id, owner, attempt): (i64, i64, i32),
    end: Final<'_>,
) -> Result<bool, Error> {
    let (state, error) = match end {
        Final::Succeeded => ("succeeded", None),
        Final::Failed(error) => ("failed", Some(error)),
        Final::Cancelled => ("cancelled", None),
    };
    let changed = client
        .execute(&statements.finish, &[&id, &owner, &attempt, &state, &error])
        .await?;
    Ok(changed == 1)
}

/// Puts job `id` back to wait `delay` before its next attempt, if `owner`
/// still holds attempt `attempt`; `false` if not. The job holds no slot
/// meanwhile: any process may claim it when it is due.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn retry(
    client: &Session,
    statements: &Statements,
    (id, owner, attempt): (i64, i64, i32),
    error: &str,
    delay: Duration,
) -> Result<bool, Error> {
    let changed = client
        .execute(
            &statements.retry,
            &[&id, &owner, &attempt, &error, &millis(delay)],
        )
        .await?;
    Ok(changed == 1)
}

/// Rescues every job whose lease expired: back to wait for its next
/// attempt, or failed if it had none left. Returns how many.
pub(crate) async fn rescue(client: &Session, statements: &Statements) -> Result<u64, Error> {
    client.execute(&statements.rescue, &[]).await
}

/// Deletes the jobs finished more than `retention` ago, `batch` rows per
/// statement (each its own short transaction, so that pruning millions of
/// rows never holds a long lock or a huge transaction); returns how many.
pub(crate) async fn prune(
    client: &Session,
    statements: &Statements,
    retention: Duration,
    batch: i64,
) -> Result<u64, Error> {
    let mut pruned = 0;
    loop {
        let deleted = client
            .execute(&statements.prune, &[&millis(retention), &batch])
            .await?;
        pruned += deleted;
        if deleted < u64::try_from(batch).unwrap_or(0) || deleted == 0 {
            return Ok(pruned);
        }
    }
}

#[cfg(test)]
mod tests;
