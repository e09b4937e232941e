//! What any process may ask of a job by id: where it stands, and to cancel
//! it (at once if it waits; through its owner's next heartbeat if it runs).

use std::time::{Duration, SystemTime};

use tokio_postgres::Error;
use tokio_postgres::error::SqlState;

use super::Statements;
use crate::connection::Session;

/// A job's row, as its status is read from it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stored {
    pub(crate) state: String,
    /// Attempts claimed so far.
    pub(crate) attempt: i32,
    pub(crate) run_at: SystemTime,
    /// The last attempt's error; none on a failed row means it ran past
    /// its time limit.
    pub(crate) error: Option<String>,
    /// How long until `run_at`, by the database's clock; zero once passed.
    pub(crate) wait: Duration,
    pub(crate) timeout: Option<Duration>,
    /// Whether `run_at` is still to come.
    pub(crate) later: bool,
    /// Its kind's `Job::NAME`.
    pub(crate) name: String,
}

/// Job `id`'s row, if it exists (not pruned).
pub(crate) async fn stored(
    client: &Session,
    statements: &Statements,
    id: i64,
) -> Result<Option<Stored>, Error> {
    let row = client.query_opt(&statements.status, &[&id]).await?;
    Ok(row.as_ref().map(Stored::from_row))
}

/// The rows of jobs `ids` that exist, each with its id.
pub(crate) async fn stored_many(
    client: &Session,
    statements: &Statements,
    ids: &[i64],
) -> Result<Vec<(i64, Stored)>, Error> {
    let rows = client.query(&statements.statuses, &[&ids]).await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(8), Stored::from_row(row)))
        .collect())
}

impl Stored {
    /// A row of `status` or `statuses`.
    fn from_row(row: &tokio_postgres::Row) -> Self {
        Self {
            state: row.get(0),
            attempt: row.get(1),
            run_at: row.get(2),
            error: row.get(3),
            wait: duration_ms(row.get(4)).unwrap_or_default(),
            timeout: row.get::<_, Option<f64>>(5).and_then(duration_ms),
            later: row.get(6),
            name: row.get(7),
        }
    }
}

/// Milliseconds as a duration; `None` if negative or not a number.
pub(crate) fn duration_ms(ms: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(ms / 1e3).ok()
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// The job waited: it is cancelled, and never runs.
    Done,
    /// The job runs: its owner is asked to stop it.
    Requested,
    /// The job had finished, or does not exist.
    TooLate,
}

/// Cancels job `id`, from any process.
pub(crate) async fn cancel(
    client: &Session,
    statements: &Statements,
    id: i64,
) -> Result<Cancel, Error> {
    if client.execute(&statements.cancel_waiting, &[&id]).await? == 1 {
        return Ok(Cancel::Done);
    }
    if client.execute(&statements.request_cancel, &[&id]).await? == 1 {
        return Ok(Cancel::Requested);
    }
    // Claimed between the two statements: ask once more.
    if client.execute(&statements.request_cancel, &[&id]).await? == 1 {
        return Ok(Cancel::Requested);
    }
    Ok(Cancel::TooLate)
}

/// What a retry by hand did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Retried {
    /// The job waits again, due now; its kind's `Job::NAME`.
    Done(String),
    /// Nothing: the job is not failed or cancelled, or does not exist.
    NotFinished,
    /// Nothing: a live job holds its unique key (this one, if it is
    /// still there).
    KeyHeld(Option<i64>),
}

/// Puts failed or cancelled job `id` back to wait, due now (see
/// `Statements::retry_by_hand`); with `announce`, a `Queued` event's
/// payload, tells listeners of the job and of the event (named by the
/// statement, from the row).
pub(crate) async fn retry_by_hand(
    client: &Session,
    statements: &Statements,
    id: i64,
    announce: Option<&str>,
) -> Result<Retried, Error> {
    let retried = match announce {
        Some(payload) => {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [
                &id,
                &statements.channel,
                &statements.events_channel,
                &payload,
            ];
            client
                .query_opt(&statements.retry_by_hand_and_notify, &params)
                .await
        }
        None => client.query_opt(&statements.retry_by_hand, &[&id]).await,
    };
    match retried {
        Ok(Some(row)) => Ok(Retried::Done(row.get("name"))),
        Ok(None) => Ok(Retried::NotFinished),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let holder = client.query_opt(&statements.holder_of_key, &[&id]).await?;
            Ok(Retried::KeyHeld(holder.map(|row| row.get(0))))
        }
        Err(error) => Err(error),
    }
}

/// Queue `queue`'s waiting (due), scheduled, running and retrying rows,
/// each counted to `cap` at most.
pub(crate) async fn stored_jobs(
    client: &Session,
    statements: &Statements,
    queue: &str,
    cap: i64,
) -> Result<[u64; 4], Error> {
    let row = client
        .query_one(&statements.stored_jobs, &[&queue, &cap])
        .await?;
    Ok([0, 1, 2, 3].map(|column| row.get::<_, i64>(column).unsigned_abs()))
}
