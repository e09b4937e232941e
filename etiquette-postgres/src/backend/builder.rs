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
    pub(super) work: bool,
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
            work: true,
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
    /// polling, and follow jobs run elsewhere by reading their rows every
    /// poll interval (one statement for all of them), which shows their
    /// starts, retries and ends but not their progress. Events are
    /// announced in batches, as many to a notification as fit.
    pub const fn notify(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// Whether this process claims and runs jobs (on by default). Off for a
    /// process that only adds jobs and looks them up, such as a web server
    /// in front of dedicated worker processes (Oban's `queues: false`,
    /// River's insert-only client): it claims nothing, and its
    /// `max_concurrent_tasks` is unused; statuses, cancels and the events
    /// of jobs run elsewhere work as in any process.
    pub const fn work(mut self, work: bool) -> Self {
        self.work = work;
        self
    }

    /// Connects, creates or updates the schema (concurrent processes wait
    /// for each other), and starts the writer of outcomes. Build the queue
    /// on it with [`Builder::build_on`](etiquette_core::Builder::build_on),
    /// which starts claiming.
    ///
    /// # Errors
    /// [`ConnectError::Setting`] if a setting cannot be honoured (before
    /// connecting); [`ConnectError`] if the database cannot be reached or
    /// migrated.
    pub async fn connect(self) -> Result<Postgres, ConnectError> {
        self.check().map_err(ConnectError::Setting)?;
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
                intake: Intake::new(client, self.clone(), Arc::clone(&statements)),
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

impl PostgresBuilder {
    /// The first setting that cannot be honoured, if any.
    fn check(&self) -> Result<(), InvalidSetting> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        let within = |setting, value: Duration, (min, max): (Duration, Duration), accepted| {
            if value < min || value > max {
                return Err(InvalidSetting {
                    setting,
                    value: format!("{value:?}"),
                    accepted,
                });
            }
            Ok(())
        };
        // A lease shorter than a few round trips would be lost between
        // heartbeats (every third of it) on any real network.
        let lease = (Duration::from_millis(100), DAY);
        within("lease", self.lease, lease, "from 100 ms to a day")?;
        let poll = (Duration::from_millis(1), DAY);
        within("poll", self.poll, poll, "from 1 ms to a day")?;
        let retention = (Duration::ZERO, CENTURY);
        within(
            "prune retention",
            self.retention,
            retention,
            "up to 100 years",
        )?;
        let every = (Duration::from_millis(1), DAY);
        within("prune every", self.prune_every, every, "from 1 ms to a day")?;
        if self.max_running == Some(0) {
            return Err(InvalidSetting {
                setting: "max_running_across_processes",
                value: "0".to_owned(),
                accepted: "at least 1: a queue held to none would never run a job",
            });
        }
        if self.queue.is_empty() || self.queue.contains('\0') {
            return Err(InvalidSetting {
                setting: "queue",
                value: format!("{:?}", self.queue),
                accepted: "a non-empty name without NUL characters",
            });
        }
        Ok(())
    }
}

/// A setting of [`PostgresBuilder`] that cannot be honoured: which, its
/// value, and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The setting, as its builder method is named.
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// What the setting accepts.
    pub accepted: &'static str,
}

impl fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            setting,
            value,
            accepted,
        } = self;
        write!(f, "`{setting}` cannot be {value}: it takes {accepted}")
    }
}

impl std::error::Error for InvalidSetting {}

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
    /// A setting cannot be honoured.
    Setting(InvalidSetting),
    /// The database could not be reached.
    Connect(tokio_postgres::Error),
    /// The schema could not be created or updated.
    Migrate(MigrateError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(_) => f.write_str("the PostgreSQL connection string is not valid"),
            Self::Setting(_) => f.write_str("a setting of the PostgreSQL backend is not valid"),
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
            Self::Setting(error) => Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConnectError, InvalidSetting};
    use crate::{Jobs, Postgres};

    /// The error `connect` gives for settings that `tune` makes, before
    /// it tries any connection (there is no server at this address).
    async fn refused(
        tune: impl FnOnce(super::PostgresBuilder) -> super::PostgresBuilder,
    ) -> InvalidSetting {
        let builder = Postgres::builder("postgres://127.0.0.1:1/none", Jobs::new()).expect("valid");
        match tune(builder).connect().await {
            Err(ConnectError::Setting(invalid)) => invalid,
            other => panic!("expected a refused setting, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn settings_that_cannot_be_honoured_are_refused_by_name_before_connecting() {
        let lease = refused(|b| b.lease(Duration::ZERO)).await;
        assert_eq!(
            lease.to_string(),
            "`lease` cannot be 0ns: it takes from 100 ms to a day"
        );
        assert_eq!(refused(|b| b.poll(Duration::ZERO)).await.setting, "poll");
        let forever = Duration::from_secs(u64::MAX);
        let retention = refused(|b| b.prune(forever, Duration::from_secs(1))).await;
        assert_eq!(retention.setting, "prune retention");
        let every = refused(|b| b.prune(Duration::ZERO, Duration::ZERO)).await;
        assert_eq!(every.setting, "prune every");
        let bound = refused(|b| b.max_running_across_processes(0)).await;
        assert_eq!(bound.setting, "max_running_across_processes");
        assert_eq!(refused(|b| b.queue("")).await.setting, "queue");
        let nul = refused(|b| b.queue("a\0b")).await;
        assert_eq!(nul.value, "\"a\\0b\"");
    }
}
