//! The backend: the engine of `etiquette-core` on PostgreSQL.
//!
//! Adds insert a row (announced with `NOTIFY` in the same statement);
//! lookups and cancels read and write rows, from any process. The claimer
//! takes due jobs into this process as it has room, and the feeder
//! (`feeder.rs`) offers them to the engine, which runs them as it runs any
//! task: the same workers, bound, time limits and events. The engine's
//! transitions of those jobs go to the completer, which writes them in
//! batches, fenced by owner and attempt: a retry is stored in the row
//! (the task leaves this process, and any process claims it when due), and
//! at a release what was not finished in time is handed back.

mod builder;
mod feeder;
mod intake;
mod retry;
mod status;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use etiquette_core::backend::{Backend, Backoff, Engine, JobOptions, LocalTask, Start, TaskRef};
use etiquette_core::{
    AddTaskError, BackendError, BuildError, Job, Subscription, TaskError, TaskHandle, TaskId,
    TaskStatus,
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_postgres::GenericClient;

use crate::Jobs;
use crate::claimer::Room;
use crate::completer::{Completer, End, Report};
use crate::connection::{Pause, refused_value};
use crate::jobs::{self, Inserted, NewJob, Statements};
pub use builder::{ConnectError, PostgresBuilder};
use intake::Intake;

/// The queue on PostgreSQL: durable, and shared by every process that
/// works it. Build it with [`Postgres::builder`], then the queue with
/// [`Builder::build_on`](etiquette_core::Builder::build_on). Cheap to
/// clone.
#[derive(Clone)]
pub struct Postgres {
    shared: Arc<Shared>,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("queue", &self.shared.settings.queue)
            .field("schema", &self.shared.settings.schema)
            .field("owner", &self.shared.owner)
            .finish_non_exhaustive()
    }
}

struct Shared {
    settings: PostgresBuilder,
    intake: Intake,
    statements: Arc<Statements>,
    /// This process, as the owner of its leases.
    owner: i64,
    completer: Arc<Completer>,
    running: Running,
}

/// A job this process claimed: the attempt it holds, and its task in the
/// engine once offered.
struct Held {
    attempt: i32,
    task: Option<LocalTask>,
}

/// The jobs this process holds.
#[derive(Default)]
struct Running {
    /// By id, from before the job is offered to the engine until its
    /// attempt ends here: whoever reports the end finds the attempt.
    held: Mutex<HashMap<i64, Held>>,
    /// Tells the claimer of finished jobs; set once it started.
    room: OnceLock<Room>,
    /// Notified once release began.
    closing: Notify,
    /// Set once a release deadline passed: attempts cancelled from then on
    /// are handed back, not cancelled.
    handing_back: AtomicBool,
}

impl Running {
    fn held(&self) -> MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Job `id` is about to be offered for attempt `attempt`; an older
    /// attempt of it still here (its lease was lost, and this process
    /// claimed it again) is returned, to be cancelled.
    fn expect(&self, id: i64, attempt: i32) -> Option<LocalTask> {
        let held = Held {
            attempt,
            task: None,
        };
        self.held().insert(id, held).and_then(|older| older.task)
    }

    /// The engine took job `id`'s attempt `attempt` as `task`, unless the
    /// attempt ended already.
    fn hold(&self, id: i64, attempt: i32, task: LocalTask) {
        if let Some(held) = self.held().get_mut(&id)
            && held.attempt == attempt
        {
            held.task = Some(task);
        }
    }

    /// The task of job `id` held here, of attempt `attempt` if given.
    fn task(&self, id: i64, attempt: Option<i32>) -> Option<LocalTask> {
        let held = self.held();
        let held = held.get(&id)?;
        if attempt.is_some_and(|attempt| held.attempt != attempt) {
            return None;
        }
        held.task.clone()
    }

    /// Cancels job `id`'s attempt `attempt` here, running or still in
    /// line.
    fn cancel(&self, engine: &Engine<Postgres>, id: i64, attempt: Option<i32>) {
        if let Some(task) = self.task(id, attempt) {
            engine.cancel(&task);
        }
    }

    /// Job `id`'s attempt is over here: which attempt it was, as claimed
    /// (`None` if it was not held).
    fn end(&self, id: i64) -> Option<i32> {
        let attempt = self.held().remove(&id)?.attempt;
        if let Some(room) = self.room.get() {
            room.done(id, attempt);
        }
        Some(attempt)
    }

    /// Job `id`'s attempt `attempt` is over here, never offered.
    fn done(&self, id: i64, attempt: i32) {
        {
            let mut held = self.held();
            if held.get(&id).is_some_and(|held| held.attempt == attempt) {
                held.remove(&id);
            }
        }
        if let Some(room) = self.room.get() {
            room.done(id, attempt);
        }
    }
}

impl Postgres {
    /// Settings for the backend on the database at `url`
    /// (`postgres://user:password@host:port/database`), running the job
    /// kinds in `jobs`.
    ///
    /// # Errors
    /// [`ConnectError::Config`] if `url` does not parse.
    pub fn builder(url: &str, jobs: Jobs) -> Result<PostgresBuilder, ConnectError> {
        let config = url.parse().map_err(ConnectError::Config)?;
        Ok(PostgresBuilder::new(config, jobs))
    }

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
    /// (Tested in `backend/tests.rs`.)
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

    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, BackendError> {
        self.shared
            .intake
            .client()
            .await
            .map_err(|error| BackendError::new("cannot reach PostgreSQL", error))
    }
}

const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A job's row id as its task id, and back.
fn task_id(id: i64) -> TaskId {
    TaskId::from(id.unsigned_abs())
}

fn row_id(id: TaskId) -> Option<i64> {
    i64::try_from(id.get()).ok()
}

fn unavailable(error: tokio_postgres::Error) -> BackendError {
    BackendError::new("PostgreSQL did not answer", error)
}

/// Inserts a typed job as `options` say, through `client`.
async fn insert(
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

impl Backend for Postgres {
    type Ticket = ();
    /// The job's arguments as JSON, or why they do not serialise.
    type Work = Result<Value, String>;

    fn work<J: Job>(job: J) -> Self::Work {
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

    fn start(engine: &Engine<Self>) -> Result<(), BuildError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(BuildError::NoRuntime);
        };
        let shared = Arc::clone(&engine.backend().shared);
        runtime.spawn(feeder::feed(
            engine.downgrade(),
            shared,
            engine.max_concurrent_tasks(),
        ));
        Ok(())
    }

    fn closing(&self) {
        self.shared.running.closing.notify_one();
    }

    async fn drained(&self) {
        self.shared.completer.flush().await;
    }

    async fn add(
        engine: &Engine<Self>,
        name: Option<&'static str>,
        work: Self::Work,
        options: JobOptions,
    ) -> Result<TaskHandle<Self>, AddTaskError> {
        let client = engine
            .backend()
            .client()
            .await
            .map_err(AddTaskError::Unavailable)?;
        insert(&*client, engine, name, work, &options).await
    }

    async fn find(
        engine: &Engine<Self>,
        id: TaskId,
    ) -> Result<Option<TaskHandle<Self>>, BackendError> {
        let Some(row) = row_id(id) else {
            return Ok(None);
        };
        let postgres = engine.backend();
        let client = postgres.client().await?;
        let stored = jobs::stored(&client, &postgres.shared.statements, row)
            .await
            .map_err(unavailable)?;
        Ok(stored.map(|_| engine.handle(id, (), false)))
    }

    async fn status(
        engine: &Engine<Self>,
        id: TaskId,
        (): &(),
    ) -> Result<TaskStatus, BackendError> {
        let postgres = engine.backend();
        let client = postgres.client().await?;
        let stored = match row_id(id) {
            Some(row) => jobs::stored(&client, &postgres.shared.statements, row)
                .await
                .map_err(unavailable)?,
            None => None,
        };
        // Pruned since the handle was made: it finished long ago.
        Ok(stored.map_or(TaskStatus::Cancelled, |stored| status::status(&stored)))
    }

    async fn cancel(engine: &Engine<Self>, id: TaskId, (): &()) -> Result<bool, BackendError> {
        let Some(row) = row_id(id) else {
            return Ok(false);
        };
        let postgres = engine.backend();
        let client = postgres.client().await?;
        let cancel = jobs::cancel(&client, &postgres.shared.statements, row)
            .await
            .map_err(unavailable)?;
        if cancel == jobs::Cancel::Requested {
            // Held here: at once, not at the next heartbeat.
            postgres.shared.running.cancel(engine, row, None);
        }
        Ok(cancel != jobs::Cancel::TooLate)
    }

    /// Reads the row until the job finished, waiting longer between reads
    /// (50 ms, doubling up to 5 s), through database restarts.
    async fn outcome(engine: Engine<Self>, id: TaskId, (): ()) -> Result<(), TaskError> {
        let mut pause = Pause::new();
        loop {
            match Self::status(&engine, id, &()).await {
                Ok(status) if status.is_finished() => return outcome(&status),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, task_id = id.get(), "reading a job's status failed")
                }
            }
            pause.wait().await;
        }
    }

    async fn subscribe_task(
        engine: &Engine<Self>,
        id: TaskId,
        after: Option<u64>,
    ) -> Result<Option<Subscription>, BackendError> {
        let held = row_id(id).and_then(|row| engine.backend().shared.running.task(row, None));
        match held {
            Some(task) => Ok(Some(engine.subscribe_local(&task, after))),
            None => Err(BackendError::msg(
                "the events of a job not running in this process are not available yet \
                 on etiquette-postgres: poll its status",
            )),
        }
    }

    fn started(&self, _task: TaskRef<'_>, _attempt: u32) {}

    fn progress(&self, _task: TaskRef<'_>, _fraction: Option<f32>, _message: Option<&str>) {}

    /// Stored in the row: the slot is free, and any process claims the job
    /// when it is due.
    fn retrying(
        &self,
        task: TaskRef<'_>,
        _attempt: u32,
        delay: Duration,
        error: &TaskError,
    ) -> Backoff {
        self.report(task, End::Retry(error.to_string(), delay));
        Backoff::Stored
    }

    fn settled(&self, task: TaskRef<'_>, status: &TaskStatus) {
        let end = match status {
            TaskStatus::Succeeded { .. } => End::Succeeded,
            TaskStatus::Failed { error, .. } => End::Failed(error.to_string()),
            TaskStatus::TimedOut { limit, .. } => End::Failed(status::timed_out_error(*limit)),
            _ if self.shared.running.handing_back.load(SeqCst) => End::HandBack,
            _ => End::Cancelled,
        };
        self.report(task, end);
    }

    fn cancel_unfinished(&self) {
        self.shared.running.handing_back.store(true, SeqCst);
        for held in self.shared.running.held().values() {
            if let Some(task) = &held.task {
                task.cancel_attempt();
            }
        }
    }
}

impl Postgres {
    /// Hands the end of `task`'s attempt, as claimed, to the completer.
    fn report(&self, task: TaskRef<'_>, end: End) {
        let Some(id) = row_id(task.id()) else {
            return;
        };
        // Held from before the offer: a job cancelled while still in line
        // never started its attempt, which the engine's count would not show.
        let attempt = self.shared.running.end(id);
        let attempt = attempt.unwrap_or_else(|| i32::try_from(task.attempts()).unwrap_or(i32::MAX));
        self.shared.completer.report(Report {
            id,
            attempt,
            end,
            landed: None,
        });
    }
}

/// A finished status as a handle's outcome.
fn outcome(status: &TaskStatus) -> Result<(), TaskError> {
    match status {
        TaskStatus::Succeeded { .. } => Ok(()),
        TaskStatus::Failed { error, .. } => Err(error.clone()),
        _ => Err(TaskError::from_message(status.to_string())),
    }
}
