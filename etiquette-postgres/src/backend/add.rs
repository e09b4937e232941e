//! The add path: a typed job's arguments as JSON, then its row, inserted
//! through the backend's connection or the application's transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use etiquette_core::backend::{Engine, JobOptions, Start};
use etiquette_core::{AddTaskError, BackendError, Job, TaskBuilder, TaskHandle};
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::connection::{Prepared, refused_value};
use crate::jobs::{self, Inserted, NewJob};

use super::{Postgres, PostgresBuilder, retry, task_id};

const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The job's arguments as JSON, or why they do not serialise.
pub(super) fn arguments<J: Job>(job: J) -> Result<Value, String> {
    // `Serialize` is user code: a panic in it refuses the job.
    match catch_unwind(AssertUnwindSafe(|| serde_json::to_value(&job))) {
        Ok(Ok(args)) => Ok(args),
        Ok(Err(error)) => Err(format!(
            "the arguments of a {:?} job do not serialise: {error}",
            J::NAME
        )),
        Err(_panic) => Err(format!(
            "serialising the arguments of a {:?} job panicked",
            J::NAME
        )),
    }
}

/// A typed job checked and ready to insert: what its row holds.
pub(crate) struct Row {
    pub(super) name: &'static str,
    args: Value,
    retry: Value,
    max_attempts: i32,
    start: (Option<SystemTime>, Option<Duration>),
    priority: i16,
    unique_key: Option<String>,
    timeout: Option<Duration>,
}

impl Row {
    /// The job as `options` say, or why it cannot be stored (or added now).
    pub(super) fn new(
        engine: &Engine<Postgres>,
        name: Option<&'static str>,
        work: Result<Value, String>,
        options: &JobOptions,
    ) -> Result<Self, AddTaskError> {
        let unstorable = |message: String| AddTaskError::Unstorable(BackendError::msg(message));
        let Some(name) = name else {
            return Err(unstorable(
                "a closure task lives in one process's memory: add a typed job (`Decorum::job`)"
                    .to_owned(),
            ));
        };
        let args = work.map_err(unstorable)?;
        let parts = options.retry().parts();
        if parts.has_retry_if {
            return Err(unstorable(format!(
                "the retry policy of a {name:?} job has a `retry_if` predicate, which is code \
                 and cannot be stored: return errors you do not want retried as a success, or \
                 keep such jobs on the in-memory queue"
            )));
        }
        if engine.is_released() {
            return Err(AddTaskError::Released);
        }
        let start = match options.start() {
            None => (None, None),
            Some(Start::At(at)) => (Some(at), None),
            // A century at most: the database's timestamps end somewhere.
            Some(Start::After(delay)) => (None, Some(delay.min(CENTURY))),
        };
        Ok(Self {
            name,
            args,
            retry: retry::stored(&parts),
            max_attempts: i32::try_from(parts.max_attempts).unwrap_or(i32::MAX),
            start,
            priority: options.priority(),
            unique_key: options.unique_key().map(str::to_owned),
            timeout: options.timeout(),
        })
    }

    /// The row's values, for the queue `settings` work.
    pub(crate) fn new_job<'a>(&'a self, settings: &'a PostgresBuilder) -> NewJob<'a> {
        NewJob {
            queue: &settings.queue,
            name: self.name,
            args: &self.args,
            priority: self.priority,
            run_at: self.start.0,
            delay: self.start.1,
            max_attempts: self.max_attempts,
            unique_key: self.unique_key.as_deref(),
            retry: &self.retry,
            timeout: self.timeout,
            notify: settings.notify,
        }
    }
}

/// Why an insert failed: a value the database refused (`refused`: a NUL
/// character in the arguments, which no retry will store), or another
/// error.
pub(crate) struct Failed {
    pub(crate) refused: bool,
    pub(crate) error: etiquette_core::BoxError,
}

impl Failed {
    pub(crate) fn new(error: tokio_postgres::Error) -> Self {
        Self {
            refused: refused_value(&error),
            error: Box::new(error),
        }
    }
}

/// The handle of job `name` inserted as `inserted` says, or why not.
pub(super) fn answer(
    engine: &Engine<Postgres>,
    name: &str,
    inserted: Result<Inserted, Failed>,
) -> Result<TaskHandle<Postgres>, AddTaskError> {
    inserted
        .map(|inserted| handle(engine, inserted))
        .map_err(|failed| failure(name, failed))
}

/// Why job `name` (or a batch, unnamed) was not added.
fn failure(name: &str, Failed { refused, error }: Failed) -> AddTaskError {
    if refused {
        let what = if name.is_empty() {
            "PostgreSQL refused one of the jobs".to_owned()
        } else {
            format!("PostgreSQL refused a {name:?} job")
        };
        AddTaskError::Unstorable(BackendError::new(what, error))
    } else {
        AddTaskError::Unavailable(BackendError::new("PostgreSQL did not answer", error))
    }
}

/// The handle of the job inserted as `inserted` says.
fn handle(engine: &Engine<Postgres>, inserted: Inserted) -> TaskHandle<Postgres> {
    match inserted {
        Inserted::New(id) => engine.handle(task_id(id), (), false),
        Inserted::Duplicate(id) => engine.handle(task_id(id), (), true),
    }
}

/// Inserts a typed job as `options` say, through `client`.
pub(super) async fn insert(
    client: &impl GenericClient,
    engine: &Engine<Postgres>,
    name: Option<&'static str>,
    work: Result<Value, String>,
    options: &JobOptions,
) -> Result<TaskHandle<Postgres>, AddTaskError> {
    let row = Row::new(engine, name, work, options)?;
    let shared = &engine.backend().shared;
    let new = row.new_job(&shared.settings);
    // The application's connection: its statement prepared for this use.
    let prepared = Prepared::default();
    let inserted = jobs::insert((client, &prepared), &shared.statements, &new).await;
    answer(engine, row.name, inserted.map_err(Failed::new))
}

/// Checks `jobs` and inserts them in one statement through `client`, or
/// through the backend's connection: all or none of them.
async fn insert_many<'a>(
    client: Option<&impl GenericClient>,
    jobs: impl IntoIterator<Item = TaskBuilder<'a, Postgres>>,
) -> Result<Vec<TaskHandle<Postgres>>, AddTaskError> {
    let mut engine: Option<Engine<Postgres>> = None;
    let mut rows = Vec::new();
    for job in jobs {
        let (its, name, work, options) = job.into_parts();
        let engine = engine.get_or_insert(its.clone());
        if !Arc::ptr_eq(&engine.backend().shared, &its.backend().shared) {
            return Err(AddTaskError::Unstorable(BackendError::msg(
                "the jobs of one `add_many` go to one queue: add those of others separately",
            )));
        }
        rows.push(Row::new(engine, name, work, &options)?);
    }
    let Some(engine) = engine else {
        return Ok(Vec::new());
    };
    let shared = &engine.backend().shared;
    let new: Vec<NewJob<'_>> = rows
        .iter()
        .map(|row| row.new_job(&shared.settings))
        .collect();
    let queue = (shared.settings.queue.as_str(), shared.settings.notify);
    let inserted = match client {
        Some(client) => {
            let prepared = Prepared::default();
            jobs::insert_many((client, &prepared), &shared.statements, queue, &new).await
        }
        None => {
            let client = engine.backend().client().await;
            let client = client.map_err(AddTaskError::Unavailable)?;
            let session = client.parts();
            jobs::insert_many(session, &shared.statements, queue, &new).await
        }
    };
    match inserted {
        Ok(inserted) => Ok(inserted
            .into_iter()
            .map(|one| handle(&engine, one))
            .collect()),
        Err(error) => Err(failure("", Failed::new(error))),
    }
}

impl Postgres {
    /// Adds a prepared job within `client`, the application's transaction
    /// (or any client): the job exists if and only if the transaction
    /// commits, and other processes are told of it once it does.
    ///
    /// ```text
    /// let transaction = client.transaction().await?;
    /// transaction.execute("INSERT INTO users ...", &[..]).await?;
    /// let welcome = Postgres::add_in(&transaction, decorum.job(Welcome { user })).await?;
    /// transaction.commit().await?;
    /// ```
    ///
    /// (Tested in `backend/tests/mod.rs`.)
    ///
    /// # Errors
    /// As [`TaskBuilder::add`](etiquette_core::TaskBuilder::add).
    pub async fn add_in(
        client: &impl GenericClient,
        job: etiquette_core::TaskBuilder<'_, Self>,
    ) -> Result<TaskHandle<Self>, AddTaskError> {
        let (engine, name, work, options) = job.into_parts();
        insert(client, &engine, name, work, &options).await
    }

    /// Adds `jobs` (built with [`Decorum::job`](etiquette_core::Decorum::job),
    /// all on one queue) in one statement and one commit: all of them, or,
    /// with an error, none. Their handles come back in order; a job whose
    /// unique key a live job holds is answered with that job's handle.
    /// For bulk adds: tens of thousands of jobs a second, where one add at a
    /// time waits for a commit each.
    ///
    /// ```text
    /// let welcomes = users.iter().map(|user| decorum.job(Welcome { user: user.id }));
    /// let handles = Postgres::add_many(welcomes).await?;
    /// ```
    ///
    /// (Tested in `backend/tests/mod.rs`.)
    ///
    /// # Errors
    /// As [`TaskBuilder::add`](etiquette_core::TaskBuilder::add), for the
    /// first job that cannot be stored, or for all; `Unstorable` for jobs
    /// of more than one queue.
    pub async fn add_many<'a>(
        jobs: impl IntoIterator<Item = TaskBuilder<'a, Self>>,
    ) -> Result<Vec<TaskHandle<Self>>, AddTaskError> {
        insert_many(None::<&tokio_postgres::Client>, jobs).await
    }

    /// [`add_many`](Self::add_many) within `client`, the application's
    /// transaction (or any client): the jobs exist if and only if it
    /// commits.
    ///
    /// # Errors
    /// As [`add_many`](Self::add_many).
    pub async fn add_many_in<'a>(
        client: &impl GenericClient,
        jobs: impl IntoIterator<Item = TaskBuilder<'a, Self>>,
    ) -> Result<Vec<TaskHandle<Self>>, AddTaskError> {
        insert_many(Some(client), jobs).await
    }
}
