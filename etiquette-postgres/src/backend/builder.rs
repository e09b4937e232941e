//! Connecting the backend: its settings, and what can go wrong.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Config;

use crate::completer::Completer;
use crate::connection::connect;
use crate::jobs::Statements;
use crate::{Jobs, MigrateError, Schema, migrate};

use super::{Intake, Postgres, Shared};

/// Settings of a [`Postgres`] backend; see [`Postgres::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PostgresBuilder {
    pub(super) config: Config,
    pub(super) schema: Schema,
    pub(super) queue: String,
    pub(super) jobs: Jobs,
    pub(super) lease: Duration,
    pub(super) poll: Duration,
    pub(super) max_running: Option<i64>,
    pub(super) notify: bool,
    pub(super) retention: Duration,
    pub(super) prune_every: Duration,
}

impl PostgresBuilder {
    pub(super) fn new(config: Config, jobs: Jobs) -> Self {
        Self {
            config,
            schema: Schema::default(),
            queue: "default".to_owned(),
            jobs,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_running: None,
            notify: true,
            retention: Duration::from_secs(24 * 3600),
            prune_every: Duration::from_secs(60),
        }
    }

    /// The schema its tables live in (`etiquette` by default).
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = schema;
        self
    }

    /// The named queue this process adds to and works (`default` by
    /// default). Queues share the table; each process works one.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// How long a claim holds a job without a heartbeat (30 s by default):
    /// after a process dies, its jobs run elsewhere this long after its
    /// last heartbeat. Heartbeats come every third of it, and renew every
    /// held job in one statement, so a long job is never taken away from a
    /// live process.
    pub const fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often the process looks for due jobs when nothing woke it (1 s
    /// by default): the fallback for missed notifications, and what makes
    /// jobs scheduled for later, or retries, start when due.
    pub const fn poll(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// Holds the queue to `max` jobs running at once across every process
    /// that works it (a distributed semaphore), besides each process's own
    /// `max_concurrent_tasks`.
    pub const fn max_running_across_processes(mut self, max: u32) -> Self {
        self.max_running = Some(max as i64);
        self
    }

    /// How long finished jobs stay in the table, for status lookups by id
    /// (a day by default); then they are deleted, in batches, every
    /// `every`, by every process that works the queue (batches skip rows
    /// another process is deleting, so they never wait for each other).
    /// Keeps the table, and the claim's index, from bloating with millions
    /// of finished rows.
    pub const fn prune(mut self, retention: Duration, every: Duration) -> Self {
        self.retention = retention;
        self.prune_every = every;
        self
    }

    /// Whether adds and task events announce themselves with `NOTIFY` and
    /// processes LISTEN (on by default): a process then wakes when a job is
    /// added, and follows the events of jobs run elsewhere. Off for
    /// transaction-pooling proxies (PgBouncer in transaction mode,
    /// Supavisor), where LISTEN cannot work: processes then find jobs by
    /// polling, and follow only the jobs they run. Each event is one
    /// notification, sent in batches.
    pub const fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Connects, creates or updates the schema (concurrent processes wait
    /// for each other), and starts the writer of outcomes. Build the queue
    /// on it with [`Builder::build_on`](etiquette_core::Builder::build_on),
    /// which starts claiming.
    ///
    /// # Errors
    /// [`ConnectError`] if the database cannot be reached or migrated.
    pub async fn connect(self) -> Result<Postgres, ConnectError> {
        let mut client = connect(&self.config).await.map_err(ConnectError::Connect)?;
        migrate(&mut client, &self.schema)
            .await
            .map_err(ConnectError::Migrate)?;
        let statements = Arc::new(Statements::new(&self.schema));
        let owner = owner_id();
        let completer = Completer::start(
            self.config.clone(),
            Statements::new(&self.schema),
            (owner, self.notify),
        );
        Ok(Postgres {
            shared: Arc::new(Shared {
                intake: Intake::new(self.config.clone(), client),
                statements,
                owner,
                completer: Arc::new(completer),
                settings: self,
                running: super::Running::default(),
                watched: super::events::Watched::default(),
            }),
        })
    }
}

/// This process, as the owner of its leases: random, so that a process
/// restarted under the same pid is not taken for its predecessor.
fn owner_id() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    i64::from_ne_bytes(hasher.finish().to_ne_bytes())
}

/// Why the backend could not be connected.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection string does not parse.
    Config(tokio_postgres::Error),
    /// The database could not be reached.
    Connect(tokio_postgres::Error),
    /// The schema could not be created or updated.
    Migrate(MigrateError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(_) => f.write_str("the PostgreSQL connection string is not valid"),
            Self::Connect(_) => f.write_str("cannot connect to PostgreSQL"),
            Self::Migrate(_) => f.write_str("cannot create or update etiquette's schema"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(error) | Self::Connect(error) => Some(error),
            Self::Migrate(error) => Some(error),
        }
    }
}
