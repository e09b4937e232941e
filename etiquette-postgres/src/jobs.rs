//! The statements of a job's life on PostgreSQL: insert, claim, heartbeat,
//! finish or retry (fenced by owner and attempt), and the rescue of
//! expired leases. Plain SQL, prepared by the server on first use.
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
use tokio_postgres::{Client, Error, GenericClient};

use crate::Schema;

/// The states in which a job still holds its unique key.
const LIVE: &str = "('available', 'running', 'retrying')";

/// The statements, with the schema's name in place.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The channel adds are announced on: `<schema>.jobs`.
    pub(crate) channel: String,
    insert: String,
    /// The insert, announcing the job on `channel` in the same transaction:
    /// listeners hear of it once it is visible.
    insert_and_notify: String,
    live_with_key: String,
    claim: String,
    claim_bounded: String,
    heartbeat: String,
    finish: String,
    retry: String,
    /// `finish` and `retry` for many jobs of one owner in one statement.
    pub(crate) report_many: String,
    rescue: String,
    prune: String,
}

impl Statements {
    pub(crate) fn new(schema: &Schema) -> Self {
        let jobs = format!("{}.jobs", schema.quoted());
        let insert = format!(
            "INSERT INTO {jobs} (queue, name, args, priority, run_at, max_attempts, unique_key)
             VALUES ($1, $2, $3, $4, coalesce($5, now()), $6, $7)
             ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND state IN {LIVE}
             DO NOTHING
             RETURNING id"
        );
        Self {
            channel: format!("{schema}.jobs"),
            insert_and_notify: format!(
                "WITH inserted AS ({insert}) SELECT id, pg_notify($8, $1) FROM inserted"
            ),
            insert,
            live_with_key: format!(
                "SELECT id FROM {jobs} WHERE queue = $1 AND unique_key = $2 AND state IN {LIVE}"
            ),
            claim: format!(
                "WITH next AS (
                     SELECT id FROM {jobs}
                     WHERE queue = $1 AND state IN ('available', 'retrying') AND run_at <= now()
                     ORDER BY priority, run_at, id
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE {jobs} AS job
                 SET state = 'running', attempt = job.attempt + 1, owner = $3,
                     lease_until = now() + $4 * interval '1 millisecond'
                 FROM next WHERE job.id = next.id
                 RETURNING job.id, job.name, job.args, job.attempt, job.max_attempts"
            ),
            claim_bounded: format!(
                "WITH next AS (
                     SELECT id FROM {jobs}
                     WHERE queue = $1 AND state IN ('available', 'retrying') AND run_at <= now()
                     ORDER BY priority, run_at, id
                     LIMIT greatest(0, least($2, $5 - (
                         SELECT count(*) FROM {jobs}
                         WHERE queue = $1 AND state = 'running' AND lease_until > now()
                     )))
                     FOR UPDATE SKIP LOCKED
                 )
                 UPDATE {jobs} AS job
                 SET state = 'running', attempt = job.attempt + 1, owner = $3,
                     lease_until = now() + $4 * interval '1 millisecond'
                 FROM next WHERE job.id = next.id
                 RETURNING job.id, job.name, job.args, job.attempt, job.max_attempts"
            ),
            heartbeat: format!(
                "UPDATE {jobs} SET lease_until = now() + $2 * interval '1 millisecond'
                 WHERE owner = $1 AND state = 'running' AND id = ANY($3)
                 RETURNING id, attempt"
            ),
            finish: format!(
                "UPDATE {jobs}
                 SET state = $4, error = $5, finished_at = now(), owner = NULL, lease_until = NULL
                 WHERE id = $1 AND owner = $2 AND attempt = $3 AND state = 'running'"
            ),
            retry: format!(
                "UPDATE {jobs}
                 SET state = 'retrying', error = $4,
                     run_at = now() + $5 * interval '1 millisecond',
                     owner = NULL, lease_until = NULL
                 WHERE id = $1 AND owner = $2 AND attempt = $3 AND state = 'running'"
            ),
            report_many: format!(
                "UPDATE {jobs} AS job
                 SET state = done.state, error = done.error,
                     run_at = CASE WHEN done.state = 'retrying'
                                   THEN now() + done.delay_ms * interval '1 millisecond'
                                   ELSE job.run_at END,
                     finished_at = CASE WHEN done.state = 'retrying' THEN NULL ELSE now() END,
                     owner = NULL, lease_until = NULL
                 FROM unnest($2::bigint[], $3::integer[], $4::text[], $5::text[], $6::float8[])
                     AS done(id, attempt, state, error, delay_ms)
                 WHERE job.id = done.id AND job.owner = $1 AND job.attempt = done.attempt
                     AND job.state = 'running'
                 RETURNING job.id, job.attempt"
            ),
            rescue: format!(
                "UPDATE {jobs}
                 SET state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'retrying' END,
                     finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
                     error = 'lease expired: the process running it stopped heartbeating',
                     run_at = now(), owner = NULL, lease_until = NULL
                 WHERE state = 'running' AND lease_until <= now()"
            ),
            prune: format!(
                "WITH old AS (
                     SELECT id FROM {jobs}
                     WHERE finished_at < now() - $1 * interval '1 millisecond'
                     ORDER BY finished_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 )
                 DELETE FROM {jobs} AS job USING old WHERE job.id = old.id"
            ),
        }
    }
}

/// A job to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewJob<'a> {
    pub(crate) queue: &'a str,
    pub(crate) name: &'a str,
    pub(crate) args: &'a Value,
    pub(crate) priority: i16,
    /// `None`: due now, by the database's clock.
    pub(crate) run_at: Option<SystemTime>,
    pub(crate) max_attempts: i32,
    pub(crate) unique_key: Option<&'a str>,
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
}

/// How an attempt ended a job for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Final<'a> {
    Succeeded,
    Failed(&'a str),
    Cancelled,
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Inserts a job, through any client or transaction: within the
/// application's transaction, the job exists if and only if it commits.
pub(crate) async fn insert(
    client: &impl GenericClient,
    statements: &Statements,
    job: &NewJob<'_>,
) -> Result<Inserted, Error> {
    loop {
        let inserted = if job.notify {
            client
                .query_opt(
                    &statements.insert_and_notify,
                    &[
                        &job.queue,
                        &job.name,
                        job.args,
                        &job.priority,
                        &job.run_at,
                        &job.max_attempts,
                        &job.unique_key,
                        &statements.channel,
                    ],
                )
                .await?
        } else {
            client
                .query_opt(
                    &statements.insert,
                    &[
                        &job.queue,
                        &job.name,
                        job.args,
                        &job.priority,
                        &job.run_at,
                        &job.max_attempts,
                        &job.unique_key,
                    ],
                )
                .await?
        };
        if let Some(row) = inserted {
            return Ok(Inserted::New(row.get(0)));
        }
        // A live job holds the key; it may finish before we look, and then
        // the key is free again: try the insert once more.
        let live = client
            .query_opt(&statements.live_with_key, &[&job.queue, &job.unique_key])
            .await?;
        if let Some(row) = live {
            return Ok(Inserted::Duplicate(row.get(0)));
        }
    }
}

/// Claims up to `limit` due jobs of `queue` for `owner`, each for one
/// attempt under a lease of `lease`.
pub(crate) async fn claim(
    client: &Client,
    statements: &Statements,
    queue: &str,
    owner: i64,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Claimed>, Error> {
    let rows = client
        .query(&statements.claim, &[&queue, &limit, &owner, &millis(lease)])
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
    client: &mut Client,
    statements: &Statements,
    queue: &str,
    owner: i64,
    (limit, max_running): (i64, i64),
    lease: Duration,
) -> Result<Vec<Claimed>, Error> {
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&QUEUE_LOCK_CLASS, &queue],
        )
        .await?;
    let rows = transaction
        .query(
            &statements.claim_bounded,
            &[&queue, &limit, &owner, &millis(lease), &max_running],
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
        })
        .collect()
}

/// Renews `owner`'s leases on `ids` for `lease` from now, in one
/// statement; returns the `(id, attempt)` it still holds (the others were
/// rescued, or finished).
pub(crate) async fn heartbeat(
    client: &Client,
    statements: &Statements,
    owner: i64,
    ids: &[i64],
    lease: Duration,
) -> Result<Vec<(i64, i32)>, Error> {
    let rows = client
        .query(&statements.heartbeat, &[&owner, &millis(lease), &ids])
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Ends attempt `attempt` of job `id` for good, if `owner` still holds it;
/// `false` if not (its lease was lost: a newer outcome stands).
pub(crate) async fn finish(
    client: &Client,
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
pub(crate) async fn retry(
    client: &Client,
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
pub(crate) async fn rescue(client: &Client, statements: &Statements) -> Result<u64, Error> {
    client.execute(&statements.rescue, &[]).await
}

/// Deletes the jobs finished more than `retention` ago, `batch` rows per
/// statement (each its own short transaction, so that pruning millions of
/// rows never holds a long lock or a huge transaction); returns how many.
pub(crate) async fn prune(
    client: &Client,
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
