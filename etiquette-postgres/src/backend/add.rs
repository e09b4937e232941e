//! The add path: a typed job's arguments as JSON, then its row, inserted
//! through the backend's connection or the application's transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use etiquette_core::backend::{Engine, JobOptions, Start};
use etiquette_core::{AddTaskError, BackendError, Job, TaskHandle};
use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::connection::refused_value;
use crate::jobs::{self, Inserted, NewJob};

use super::{Postgres, retry, task_id, unavailable};

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

/// Inserts a typed job as `options` say, through `client`.
pub(super) async fn insert(
    client: &impl GenericClient,
    engine: &Engine<Postgres>,
    name: Option<&'static str>,
    work: Result<Value, String>,
    options: &JobOptions,
) -> Result<TaskHandle<Postgres>, AddTaskError> {
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
            "the retry policy of a {name:?} job has a `retry_if` predicate, which is code and \
             cannot be stored: return errors you do not want retried as a success, or keep \
             such jobs on the in-memory queue"
        )));
    }
    if engine.is_released() {
        return Err(AddTaskError::Released);
    }
    let postgres = engine.backend();
    let settings = &postgres.shared.settings;
    let (run_at, delay) = match options.start() {
        None => (None, None),
        Some(Start::At(at)) => (Some(at), None),
        // A century at most: the database's timestamps end somewhere.
        Some(Start::After(delay)) => (None, Some(delay.min(CENTURY))),
    };
    let retry = retry::stored(&parts);
    let new = NewJob {
        queue: &settings.queue,
        name,
        args: &args,
        priority: options.priority(),
        run_at,
        delay,
        max_attempts: i32::try_from(parts.max_attempts).unwrap_or(i32::MAX),
        unique_key: options.unique_key(),
        retry: &retry,
        timeout: options.timeout(),
        notify: settings.notify,
    };
    match jobs::insert(client, &postgres.shared.statements, &new).await {
        Ok(Inserted::New(id)) => Ok(engine.handle(task_id(id), (), false)),
        Ok(Inserted::Duplicate(id)) => Ok(engine.handle(task_id(id), (), true)),
        // A value the database cannot take (a NUL character in the
        // arguments): no retry will store it.
        Err(error) if refused_value(&error) => Err(AddTaskError::Unstorable(BackendError::new(
            format!("PostgreSQL refused a {name:?} job"),
            error,
        ))),
        Err(error) => Err(AddTaskError::Unavailable(unavailable(error))),
    }
}
