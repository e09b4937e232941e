//! The connection handlers' adds and lookups go through: one per process,
//! pipelined (tokio-postgres sends concurrent statements on one connection
//! without waiting for each answer), made again when the database comes
//! back after it went away.
//!
//! Adds are committed in groups: handlers that add at the same moment, in
//! different requests, share one statement and one commit, each answered
//! with its own job once it is durable. Two groups are written at a time,
//! each on a connection of its own, and the adds that arrive meanwhile make
//! the next, so a lone add waits for nothing, and a busy server is not
//! held to one disk flush per add. Two, because a group's time is mostly
//! its commit's flush, which the server shares between the commits that
//! wait for it at once: a second group in flight nearly doubles the adds
//! per flush, where one connection would send its commits one after the
//! other.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Config;

use super::add::{Failed, Row};
use super::builder::PostgresBuilder;
use crate::connection::{Session, connect};
use crate::jobs::{self, Inserted, Statements};

/// The most adds one statement takes.
const GROUP: usize = 1_000;

/// Groups written at once, each on its own connection.
const WRITERS: usize = 2;

pub(crate) struct Intake {
    connection: Arc<Connection>,
    adds: mpsc::UnboundedSender<Pending>,
    /// Groups written so far (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) groups: Arc<AtomicU64>,
}

/// An add waiting for its group's commit.
struct Pending {
    row: Row,
    answer: oneshot::Sender<Result<Inserted, Failed>>,
}

/// A connection made again when it was lost (or made at its first use).
struct Connection {
    config: Config,
    client: Mutex<Option<Arc<Session>>>,
}

impl Intake {
    /// The intake over `client`, its adds committed in groups by a task
    /// on the current runtime, as `settings` and `statements` say.
    pub(crate) fn new(
        client: Session,
        settings: PostgresBuilder,
        statements: Arc<Statements>,
    ) -> Self {
        let connection = Arc::new(Connection {
            config: settings.config.clone(),
            client: Mutex::new(Some(Arc::new(client))),
        });
        let (adds, pending) = mpsc::unbounded_channel();
        let pending = Arc::new(tokio::sync::Mutex::new(pending));
        let groups = Arc::new(AtomicU64::new(0));
        // The first writer shares the lookups' connection; the others make
        // theirs at their first group.
        for writer in 0..WRITERS {
            let connection = if writer == 0 {
                Arc::clone(&connection)
            } else {
                Arc::new(Connection {
                    config: settings.config.clone(),
                    client: Mutex::new(None),
                })
            };
            tokio::spawn(commit_groups(
                (connection, Arc::clone(&groups)),
                settings.clone(),
                Arc::clone(&statements),
                Arc::clone(&pending),
            ));
        }
        Self {
            connection,
            adds,
            groups,
        }
    }

    /// The connection, made again if it was lost.
    pub(crate) async fn client(&self) -> Result<Arc<Session>, tokio_postgres::Error> {
        self.connection.client().await
    }

    /// Inserts `row` with the adds of the same moment, once committed.
    pub(crate) async fn add(&self, row: Row) -> Result<Inserted, Failed> {
        let (answer, answered) = oneshot::channel();
        let stopped = || Failed {
            refused: false,
            error: "the intake of the PostgreSQL backend stopped".into(),
        };
        self.adds
            .send(Pending { row, answer })
            .map_err(|_| stopped())?;
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Connection {
    async fn client(&self) -> Result<Arc<Session>, tokio_postgres::Error> {
        let current = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(current) = current.filter(|client| !client.is_closed()) {
            return Ok(current);
        }
        let fresh = Arc::new(connect(&self.config).await?);
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have connected meanwhile: keep one.
        match &*client {
            Some(current) if !current.is_closed() => Ok(Arc::clone(current)),
            _ => Ok(Arc::clone(client.insert(fresh))),
        }
    }
}

/// One writer: takes the adds pending when it is free as a group, writes
/// it on `connection`, and again, until the intake is gone.
async fn commit_groups(
    (connection, groups): (Arc<Connection>, Arc<AtomicU64>),
    settings: PostgresBuilder,
    statements: Arc<Statements>,
    pending: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
) {
    let mut group = Vec::with_capacity(GROUP);
    // The lock is held while waiting for adds, not while writing them.
    while pending.lock().await.recv_many(&mut group, GROUP).await > 0 {
        let answers = write(&connection, &settings, &statements, &group).await;
        groups.fetch_add(1, Relaxed);
        for (add, answer) in group.drain(..).zip(answers) {
            // A handler that stopped waiting (its request gone) is not told.
            let _ = add.answer.send(answer);
        }
    }
}

/// The answer to each add of `group`, in order.
async fn write(
    connection: &Connection,
    settings: &PostgresBuilder,
    statements: &Statements,
    group: &[Pending],
) -> Vec<Result<Inserted, Failed>> {
    let client = match connection.client().await {
        Ok(client) => client,
        Err(error) => {
            let error = Arc::new(error);
            return group
                .iter()
                .map(|_| {
                    Err(Failed {
                        refused: false,
                        error: Box::new(SharedError(Arc::clone(&error))),
                    })
                })
                .collect();
        }
    };
    let new: Vec<_> = group.iter().map(|add| add.row.new_job(settings)).collect();
    if let [one] = &new[..] {
        return vec![
            jobs::insert(client.parts(), statements, one)
                .await
                .map_err(Failed::new),
        ];
    }
    let queue = (settings.queue.as_str(), settings.notify);
    let session = client.parts();
    match jobs::insert_many(session, statements, queue, &new).await {
        Ok(inserted) => inserted.into_iter().map(Ok).collect(),
        // One job the database refuses (a NUL character in its arguments)
        // must not fail the others: each is tried alone.
        Err(_) => {
            let mut answers = Vec::with_capacity(new.len());
            for one in &new {
                answers.push(
                    jobs::insert(session, statements, one)
                        .await
                        .map_err(Failed::new),
                );
            }
            answers
        }
    }
}

/// One connection error, told to every add of a group.
#[derive(Debug)]
struct SharedError(Arc<tokio_postgres::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
