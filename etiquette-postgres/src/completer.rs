//! Reporting outcomes in batches: the engine's workers hand each attempt's
//! end (finished for good, or to retry after a delay) to one task, which
//! writes every outcome waiting at that moment in one statement and one
//! commit. A busy process is then not bound by one flush per job: while a
//! statement is in flight, the next batch gathers (group commit).
//!
//! Each outcome is fenced by owner and attempt, as one at a time would be:
//! an attempt whose lease was lost is refused, and told so. An outcome is
//! never dropped while the process lives: a failed statement is retried,
//! with a growing pause, until the database answers. If the process dies
//! first, the leases expire and the jobs run again (at least once).
//!
//! Every attempt ends here through the completer: handing it its outcome
//! frees the attempt's room at once, and the lease stays held (renewed by
//! the claimer) until the batch holding it is written ([`Leases`]), so that
//! a slow write never lets another process rescue a job done here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use etiquette_core::TaskStatus;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::Config;

use crate::backend::events;
use crate::connection::{Pause, Session, connect, refused_value};
use crate::jobs::{NOTIFY_MANY, Statements, millis};
use crate::leases::Leases;

/// Outcomes written in one statement at the most.
const BATCH: usize = 1_000;

/// How an attempt ended, as written to its row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum End {
    Succeeded,
    Failed(String),
    /// Ran past its time limit, for good: written as a failure with no
    /// error text, a mark no error of the job's own can forge (each is
    /// stored as text, possibly empty), read back as timed out.
    TimedOut,
    Cancelled,
    /// Failed with this error; the next attempt after this delay.
    Retry(String, Duration),
    /// Given back unfinished (a release): claimable at once, the attempt
    /// not counted.
    HandBack,
}

/// One attempt's outcome, and who waits to hear whether it landed.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) id: i64,
    pub(crate) attempt: i32,
    pub(crate) end: End,
    /// Told `true` once written, `false` if refused (the lease was lost).
    pub(crate) landed: Option<oneshot::Sender<bool>>,
    /// The task event announcing it to other processes, sent only if it
    /// landed: an attempt whose lease was lost announces nothing.
    pub(crate) announce: Option<String>,
}

/// What the completer is handed.
#[derive(Debug)]
enum Message {
    Report(Report),
    /// A task event to announce to other processes, after the outcomes
    /// handed over before it are written.
    Announce(String),
    /// Told once everything handed over before it is written.
    Flush(oneshot::Sender<()>),
}

/// The running completer; dropped, it writes what it was given, then stops.
#[derive(Debug)]
pub(crate) struct Completer {
    reports: mpsc::UnboundedSender<Message>,
    /// Its owner's leases, shared with the claimer.
    leases: Leases,
    /// Statements that wrote outcomes so far (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) batches: Arc<AtomicU64>,
    #[cfg_attr(not(test), allow(dead_code))] // awaited by `finish`
    task: JoinHandle<()>,
}

impl Completer {
    /// Starts writing the outcomes of `owner`'s attempts over a connection
    /// of its own to `config` (made again if lost), on the current tokio
    /// runtime.
    /// With `notify`, it also announces the end of a job that a cancel
    /// asked for while an attempt ran, which no one else announces.
    pub(crate) fn start(
        config: Config,
        statements: Statements,
        (owner, notify): (i64, bool),
    ) -> Self {
        let (reports, received) = mpsc::unbounded_channel();
        let batches = Arc::new(AtomicU64::new(0));
        let leases = Leases::default();
        let task = tokio::spawn(write_reports(
            without_nested_loops(config),
            statements,
            (owner, notify, Arc::clone(&batches)),
            (received, leases.clone()),
        ));
        Self {
            reports,
            leases,
            batches,
            task,
        }
    }

    /// The leases of its owner's jobs, which the claimer holds and renews:
    /// each until the completer is done with the outcome of its attempt.
    pub(crate) fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Hands over one outcome, which ends its attempt here: its room is
    /// free at once, its lease held until the outcome is written. Never
    /// waits.
    pub(crate) fn report(&self, report: Report) {
        let (id, attempt) = (report.id, report.attempt);
        self.leases.ended(id, attempt);
        // Fails only once the task stopped, which only `finish` does: the
        // outcome will never be written, and the lease is let go.
        if self.reports.send(Message::Report(report)).is_err() {
            self.leases.settled([(id, attempt)]);
        }
    }

    /// Hands over how job `id`'s attempt `attempt` ended, with no one
    /// waiting to hear whether it landed.
    pub(crate) fn end(&self, id: i64, attempt: i32, end: End) {
        self.report(Report {
            id,
            attempt,
            end,
            landed: None,
            announce: None,
        });
    }

    /// Announces a task event to other processes (best effort: an event
    /// lost with the connection is not sent again; the row stays the truth).
    pub(crate) fn announce(&self, payload: String) {
        let _ = self.reports.send(Message::Announce(payload));
    }

    /// Waits until every outcome handed over so far is written (or refused).
    pub(crate) async fn flush(&self) {
        let (told, written) = oneshot::channel();
        if self.reports.send(Message::Flush(told)).is_ok() {
            let _ = written.await;
        }
    }

    /// Writes what is left, then stops.
    #[cfg_attr(not(test), allow(dead_code))] // the backend's release uses `flush`
    pub(crate) async fn finish(self) {
        drop(self.reports);
        let _ = self.task.await;
    }
}

/// `config` with nested-loop joins off for the connection's statements:
/// the outcomes' join of the batch to its rows by id must hash (or merge).
/// The planner estimates the rows found by `owner = $1` from statistics,
/// and statistics gathered while nothing ran (no row had an owner) make it
/// one: it then runs the batch once per row found, a join of n by n (70 ms
/// for a batch of 450 on a 100k-row table, against 9 ms hashed). No other
/// statement runs on this connection but the events' NOTIFY.
pub(crate) fn without_nested_loops(mut config: Config) -> Config {
    let options = match config.get_options() {
        Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} -c enable_nestloop=off"),
        _ => "-c enable_nestloop=off".to_owned(),
    };
    config.options(options);
    config
}

async fn write_reports(
    config: Config,
    statements: Statements,
    (owner, notify, batches): (i64, bool, Arc<AtomicU64>),
    (mut received, leases): (mpsc::UnboundedReceiver<Message>, Leases),
) {
    let mut client = None;
    let mut messages = Vec::new();
    let mut batch = Vec::new();
    let mut flushes = Vec::new();
    let mut announces = Vec::new();
    while received.recv_many(&mut messages, BATCH).await > 0 {
        for message in messages.drain(..) {
            match message {
                Message::Report(report) => batch.push(report),
                Message::Announce(payload) => announces.push(payload),
                Message::Flush(told) => flushes.push(told),
            }
        }
        if !batch.is_empty() {
            let landed = write_or_split((&config, &mut client), &statements, owner, &batch).await;
            batches.fetch_add(1, Relaxed);
            // Written, refused as stale, or dropped as unstorable: in each
            // case the lease is no longer this process's to keep.
            leases.settled(batch.iter().map(|report| (report.id, report.attempt)));
            for report in batch.drain(..) {
                let landed = landed.get(&(report.id, report.attempt)).copied();
                if let Some(tell) = report.landed {
                    let _ = tell.send(landed.is_some());
                }
                // After the events handed over before it (a start, progress).
                let announce = match landed {
                    None => None,
                    // A retry or hand-back a cancel turned into the job's end.
                    Some(true) if notify && report.end != End::Cancelled => {
                        Some(events::finished(owner, report.id, &TaskStatus::Cancelled))
                    }
                    Some(_) => report.announce,
                };
                announces.extend(announce);
            }
        }
        if !announces.is_empty() {
            announce((&config, &mut client), &statements, &announces).await;
            announces.clear();
        }
        for told in flushes.drain(..) {
            let _ = told.send(());
        }
    }
}

/// The `(id, attempt)` that landed, each with whether its job ended
/// cancelled (a cancel asked while it ran wins over a retry or hand-back).
type Landed = std::collections::HashMap<(i64, i32), bool>;

/// Sends `announced` events on the events channel, as few notifications
/// in one statement, after the outcomes they follow: once, on a connection
/// made again if lost.
async fn announce(
    (config, client): (&Config, &mut Option<Session>),
    statements: &Statements,
    announced: &[String],
) {
    let payloads = events::bundle(announced);
    if client.as_ref().is_none_or(|session| session.is_closed()) {
        *client = connect(config).await.ok();
    }
    let Some(connected) = client.as_ref() else {
        return;
    };
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&statements.events_channel, &payloads];
    if let Err(error) = connected.execute(NOTIFY_MANY, &params).await {
        tracing::warn!(%error, events = announced.len(), "announcing task events failed");
    }
}

/// Writes a batch; if the database refuses it (not a lost connection: a
/// value it cannot take), writes its outcomes one by one, so that one bad
/// outcome cannot hold up the others for ever. One it refuses alone is
/// logged and dropped: its lease expires and the job is rescued.
async fn write_or_split(
    connection: (&Config, &mut Option<Session>),
    statements: &Statements,
    owner: i64,
    batch: &[Report],
) -> Landed {
    let (config, client) = connection;
    let refused = match write_batch((config, &mut *client), statements, owner, batch).await {
        Ok(landed) => return landed,
        Err(refused) => refused,
    };
    if let [report] = batch {
        tracing::error!(job_id = report.id, error = %refused, "the database refused an outcome; the job will be rescued when its lease expires");
        return Landed::new();
    }
    let mut landed = Landed::new();
    for report in batch {
        match write_batch(
            (config, &mut *client),
            statements,
            owner,
            std::slice::from_ref(report),
        )
        .await
        {
            Ok(one) => landed.extend(one),
            Err(error) => {
                tracing::error!(job_id = report.id, %error, "the database refused an outcome; the job will be rescued when its lease expires");
            }
        }
    }
    landed
}

/// The longest wait before a retry the statement takes: a century, where
/// timestamps still fit.
const LONGEST_DELAY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Text as the database takes it: it refuses NUL characters.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Writes one batch, trying again until the database answers; returns the
/// `(id, attempt)` that landed, or the database's error if it refused the
/// statement itself.
async fn write_batch(
    (config, client): (&Config, &mut Option<Session>),
    statements: &Statements,
    owner: i64,
    batch: &[Report],
) -> Result<Landed, tokio_postgres::Error> {
    let ids: Vec<i64> = batch.iter().map(|report| report.id).collect();
    let attempts: Vec<i32> = batch.iter().map(|report| report.attempt).collect();
    let (mut states, mut errors, mut delays) = (Vec::new(), Vec::new(), Vec::new());
    for report in batch {
        let (state, error, delay) = match &report.end {
            End::Succeeded => ("succeeded", None, Duration::ZERO),
            End::Failed(error) => ("failed", Some(storable(error)), Duration::ZERO),
            End::TimedOut => ("failed", None, Duration::ZERO),
            End::Cancelled => ("cancelled", None, Duration::ZERO),
            End::Retry(error, delay) => ("retrying", Some(storable(error)), *delay),
            End::HandBack => ("available", None, Duration::ZERO),
        };
        states.push(state);
        errors.push(error);
        delays.push(millis(delay.min(LONGEST_DELAY)));
    }
    let mut pause = Pause::new();
    loop {
        // A lost connection is made again: the outcomes must land.
        if client.as_ref().is_none_or(|session| session.is_closed()) {
            *client = connect(config).await.ok();
        }
        let written = match client.as_ref() {
            Some(client) => client
                .query(
                    &statements.report_many,
                    &[&owner, &ids, &attempts, &states, &errors, &delays],
                )
                .await
                .map_err(Some),
            None => Err(None),
        };
        match written {
            Ok(rows) => {
                let landed = rows
                    .iter()
                    .map(|row| ((row.get(0), row.get(1)), row.get(2)));
                return Ok(landed.collect());
            }
            // The server refused a value (a data exception, a constraint,
            // a limit): trying again cannot help. Anything else (a restart
            // cutting the connection) is tried again.
            Err(Some(error)) if refused_value(&error) => return Err(error),
            Err(error) => {
                let error =
                    error.map_or_else(|| "cannot connect".to_owned(), |error| error.to_string());
                let pause_for = pause.next();
                tracing::warn!(%error, ?pause_for, outcomes = batch.len(), "writing outcomes failed; trying again");
                pause.wait().await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
