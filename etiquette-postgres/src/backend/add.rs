//! The add path: a typed job's arguments as JSON, then its row, inserted
//! through the backend's connection or the application's transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use etiquette_core::backend::{Engine, JobOptions, Start};
use etiquette_core::{AddTaskError, BackendError, Job, TaskHandle};
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::connection::refused_value;
use crate::jobs::{self, Inserted, NewJob};

use super::{Postgres, retry, task_id};

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
pub(super) struct Row {
    name: &'static str,
    args: Value,
    retry: Value,
    max_attempts: i32,
    start: (Option<SystemTime>, Option<Duration>),
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
        })
    }

    /// The row's values, for `engine`'s queue.
    pub(super) fn new_job<'a>(
        &'a self,
        engine: &'a Engine<Postgres>,
        options: &'a JobOptions,
    ) -> NewJob<'a> {
        let settings = &engine.backend().shared.settings;
        NewJob {
            queue: &settings.queue,
            name: self.name,
            args: &self.args,
            priority: options.priority(),
            run_at: self.start.0,
            delay: self.start.1,
            max_attempts: self.max_attempts,
            unique_key: options.unique_key(),
            retry: &self.retry,
            timeout: options.timeout(),
            notify: settings.notify,
        }
    }

    /// The handle of the job inserted as `inserted` says, or why not: a
    /// value the database refused (`refused`: a NUL character in the
    /// arguments, which no retry will store), or another error.
    pub(super) fn handle<E: Into<etiquette_core::BoxError>>(
        &self,
        engine: &Engine<Postgres>,
        inserted: Result<Inserted, (bool, E)>,
    ) -> Result<TaskHandle<Postgres>, AddTaskError> {
        match inserted {
            Ok(Inserted::New(id)) => Ok(engine.handle(task_id(id), (), false)),
            Ok(Inserted::Duplicate(id)) => Ok(engine.handle(task_id(id), (), true)),
            Err((true, error)) => Err(AddTaskError::Unstorable(BackendError::new(
                format!("PostgreSQL refused a {:?} job", self.name),
                error,
            ))),
            Err((false, error)) => Err(AddTaskError::Unavailable(BackendError::new(
                "PostgreSQL did not answer",
                error,
            ))),
        }
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
    let statements = &engine.backend().shared.statements;
    let inserted = jobs::insert(client, statements, &row.new_job(engine, options)).await;
    row.handle(
        engine,
        inserted.map_err(|error| (refused_value(&error), error)),
    )
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
}
