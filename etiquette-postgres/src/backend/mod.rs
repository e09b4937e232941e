//! The backend: the engine of `etiquette-core` on PostgreSQL.
//!
//! Adds insert a row (`add.rs`; announced with `NOTIFY` in the same
//! statement); lookups and cancels read and write rows, from any process.
//! The claimer takes due jobs into this process as it has room, and the
//! feeder (`feeder.rs`) offers them to the engine, which runs them as it
//! runs any task: the same workers, bound, time limits and events; the
//! jobs this process holds meanwhile are kept in `running.rs`. The engine's
//! transitions of those jobs go to the completer, which writes them in
//! batches, fenced by owner and attempt: a retry is stored in the row
//! (the task leaves this process, and any process claims it when due), and
//! at a release what was not finished in time is handed back.

mod add;
mod builder;
pub(crate) mod events;
mod feeder;
mod follow;
mod intake;
mod retry;
mod running;
mod status;
#[cfg(test)]
mod tests;
mod upkeep;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use etiquette_core::backend::{Backend, Backoff, Engine, JobOptions, TaskRef};
use etiquette_core::{
    AddTaskError, BackendError, BuildError, EventKind, Job, RetryTaskError, StoredJobs,
    Subscription, TaskError, TaskHandle, TaskId, TaskStatus,
};
use serde_json::Value;

use crate::Jobs;
use crate::completer::{Completer, End, Report};
use crate::connection::{Pause, Session};
use crate::jobs::{self, Statements};
pub use builder::{ConnectError, InvalidSetting, PostgresBuilder};
use intake::Intake;
use running::Running;

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
    /// Jobs run elsewhere that subscribers here follow.
    watched: events::Watched,
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

    /// The row of job `id`, if there is one.
    /// [`add_in`](Self::add_in), within the application's sqlx transaction
    /// (or any sqlx connection): pass `&mut *transaction` (feature `sqlx`).
    ///
    /// ```text
    /// let mut transaction = pool.begin().await?;
    /// sqlx::query("INSERT INTO users ...").execute(&mut *transaction).await?;
    /// let welcome = Postgres::add_in_sqlx(&mut transaction, decorum.job(Welcome { user })).await?;
    /// transaction.commit().await?;
    /// ```
    ///
    /// (Tested in `backend/tests/sqlx.rs`.)
    ///
    /// # Errors
    /// As [`TaskBuilder::add`](etiquette_core::TaskBuilder::add).
    #[cfg(feature = "sqlx")]
    pub async fn add_in_sqlx(
        connection: &mut sqlx::PgConnection,
        job: etiquette_core::TaskBuilder<'_, Self>,
    ) -> Result<TaskHandle<Self>, AddTaskError> {
        let (engine, name, work, options) = job.into_parts();
        let row = add::Row::new(&engine, name, work, &options)?;
        let shared = &engine.backend().shared;
        let new = row.new_job(&shared.settings);
        let inserted = jobs::insert_sqlx(connection, &shared.statements, &new).await;
        let inserted = inserted.map_err(|error| add::Failed {
            refused: jobs::refused_value_sqlx(&error),
            error: Box::new(error),
        });
        add::answer(&engine, row.name, inserted)
    }

    async fn stored(&self, id: TaskId) -> Result<Option<jobs::Stored>, BackendError> {
        let Some(row) = row_id(id) else {
            return Ok(None);
        };
        let client = self.client().await?;
        jobs::stored(&client, &self.shared.statements, row)
            .await
            .map_err(unavailable)
    }

    async fn client(&self) -> Result<Arc<Session>, BackendError> {
        self.shared
            .intake
            .client()
            .await
            .map_err(|error| BackendError::new("cannot reach PostgreSQL", error))
    }
}

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

/// What each count of [`Postgres::stored_jobs`](Backend::stored_jobs)
/// is counted to at most: a dashboard asks every two seconds, and a
/// backlog of millions is as well shown as "10,000+".
const STORED_CAP: i64 = 10_000;

impl Backend for Postgres {
    type Ticket = ();
    /// The job's arguments as JSON, or why they do not serialise.
    type Work = Result<Value, String>;

    fn work<J: Job>(job: J) -> Self::Work {
        add::arguments(job)
    }

    fn start(engine: &Engine<Self>) -> Result<(), BuildError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(BuildError::NoRuntime);
        };
        let shared = Arc::clone(&engine.backend().shared);
        runtime.spawn(upkeep::prune(engine.downgrade(), Arc::clone(&shared)));
        // With notifications too: the ends they lost (see `follow.rs`).
        runtime.spawn(follow::follow_rows(engine.downgrade(), Arc::clone(&shared)));
        // A process that does not work the queue still listens, for the
        // events of the jobs it follows: its claimer has no room.
        let room = if shared.settings.work {
            engine.max_concurrent_tasks()
        } else {
            0
        };
        runtime.spawn(feeder::feed(engine.downgrade(), shared, room));
        Ok(())
    }

    fn closing(&self) {
        self.shared.running.closing.notify_one();
    }

    /// Waits until the claims stopped (what was claimed and not taken in
    /// handed back), then until every outcome and hand-back is written.
    async fn drained(&self) {
        self.shared.running.claims_stop().await;
        self.shared.completer.flush().await;
    }

    async fn add(
        engine: &Engine<Self>,
        name: Option<&'static str>,
        work: Self::Work,
        options: JobOptions,
    ) -> Result<TaskHandle<Self>, AddTaskError> {
        let row = add::Row::new(engine, name, work, &options)?;
        let name = row.name;
        let inserted = engine.backend().shared.intake.add(row).await;
        add::answer(engine, name, inserted)
    }

    async fn find(
        engine: &Engine<Self>,
        id: TaskId,
    ) -> Result<Option<TaskHandle<Self>>, BackendError> {
        let stored = engine.backend().stored(id).await?;
        Ok(stored.map(|_| engine.handle(id, (), false)))
    }

    async fn status(
        engine: &Engine<Self>,
        id: TaskId,
        (): &(),
    ) -> Result<TaskStatus, BackendError> {
        let stored = engine.backend().stored(id).await?;
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

    /// One fenced `UPDATE` of the job's row, from `failed` or `cancelled`
    /// to `available`, due now (by the database's clock), with one more
    /// attempt allowed if it had used them up; its last error stays until
    /// its next attempt writes its own. With notifications on, the same
    /// statement wakes the processes listening, one of which claims it at
    /// once, and announces its `Queued` event to them; this process
    /// publishes it to its own subscribers. A handle taken before reads
    /// the row, so it sees the new life.
    async fn retry(engine: &Engine<Self>, id: TaskId) -> Result<TaskHandle<Self>, RetryTaskError> {
        let Some(row) = row_id(id) else {
            return Err(RetryTaskError::Unknown(id));
        };
        if engine.is_released() {
            return Err(RetryTaskError::Released);
        }
        let postgres = engine.backend();
        let shared = &postgres.shared;
        let client = postgres.client().await?;
        // Named by the statement, which reads the row (see `retry_by_hand`).
        let queued = EventKind::Queued { job: None };
        let announce = shared
            .settings
            .notify
            .then(|| events::event(shared.owner, row, &queued))
            .flatten();
        // A key holder or a state that changed between two statements:
        // asked again, a few times.
        for _ in 0..3 {
            let retried =
                jobs::retry_by_hand(&client, &shared.statements, row, announce.as_deref());
            match retried.await.map_err(unavailable)? {
                jobs::Retried::Done(name) => {
                    let job = shared.settings.jobs.name(&name);
                    engine.publish(id, EventKind::Queued { job });
                    return Ok(engine.handle(id, (), false));
                }
                jobs::Retried::KeyHeld(Some(holder)) => {
                    let holder = task_id(holder);
                    return Err(RetryTaskError::UniqueKeyHeld { task: id, holder });
                }
                jobs::Retried::KeyHeld(None) => {} // its holder just finished
                jobs::Retried::NotFinished => match postgres.stored(id).await? {
                    None => return Err(RetryTaskError::Unknown(id)),
                    Some(stored) => match stored.state.as_str() {
                        "succeeded" => return Err(RetryTaskError::Succeeded(id)),
                        "failed" | "cancelled" => {} // it ended again meanwhile
                        _ => return Err(RetryTaskError::NotFinished(id)),
                    },
                },
            }
        }
        Err(RetryTaskError::NotFinished(id))
    }

    /// The queue's rows by state, each counted to [`STORED_CAP`] at most,
    /// along the indexes of waiting and running rows (never the finished).
    async fn stored_jobs(engine: &Engine<Self>) -> Result<Option<StoredJobs>, BackendError> {
        let postgres = engine.backend();
        let shared = &postgres.shared;
        let client = postgres.client().await?;
        let queue = shared.settings.queue.as_str();
        let counts = jobs::stored_jobs(&client, &shared.statements, queue, STORED_CAP);
        let [queued, scheduled, running, retrying] = counts.await.map_err(unavailable)?;
        let counts = (queued, scheduled, running, retrying);
        Ok(Some(StoredJobs::new(counts, STORED_CAP.unsigned_abs())))
    }

    /// Reads the job's row until it says the job finished, waiting longer
    /// between reads (50 ms, doubling up to 5 s), through database
    /// restarts; meanwhile it follows the job's events (see
    /// `subscribe_task`), whose end cuts the wait short.
    async fn outcome(engine: Engine<Self>, id: TaskId, (): ()) -> Result<(), TaskError> {
        let follow = async {
            if let Ok(Some(mut events)) = Self::subscribe_task(&engine, id, None).await {
                while events.next().await.is_some() {}
            }
        };
        let mut follow = std::pin::pin!(follow);
        let mut followed = false;
        let mut pause = Pause::new();
        loop {
            match Self::status(&engine, id, &()).await {
                Ok(status) if status.is_finished() => return status::outcome(&status),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, task_id = id.get(), "reading a job's status failed");
                }
            }
            if followed {
                pause.wait().await;
            } else {
                tokio::select! {
                    () = pause.wait() => {}
                    () = follow.as_mut() => followed = true,
                }
            }
        }
    }

    async fn subscribe_task(
        engine: &Engine<Self>,
        id: TaskId,
        after: Option<u64>,
    ) -> Result<Option<Subscription>, BackendError> {
        let Some(row) = row_id(id) else {
            return Ok(None);
        };
        let postgres = engine.backend();
        let shared = &postgres.shared;
        // Followed as a job run anywhere, even one running here: a failed
        // attempt may leave this process to retry in another, and its
        // followers here must still see its end.
        // Followed before its row is read: an end announced in between is
        // in the subscription, and an end read from the row is published
        // to it, once.
        let watched = shared.watched.watch(engine, row);
        let subscription = engine.subscribe_local(&watched, after);
        match postgres.stored(id).await? {
            None => {
                shared.watched.finish(engine, row, TaskStatus::Cancelled);
                Ok(None)
            }
            Some(stored) => {
                // Where its followers begin; without notifications, the
                // step from which its row is read again (`follow.rs`).
                let job = shared.settings.jobs.name(&stored.name);
                shared
                    .watched
                    .read(engine, row, (status::status(&stored), job), false);
                Ok(Some(subscription))
            }
        }
    }

    /// Announced with the job's name, from its claim.
    fn started(&self, task: TaskRef<'_>, attempt: u32) {
        if !self.shared.settings.notify {
            return; // nobody to tell: no need to look the name up
        }
        let job = row_id(task.id()).and_then(|id| self.shared.running.kind(id));
        self.announce(task, &EventKind::Started { attempt, job });
    }

    fn progress(&self, task: TaskRef<'_>, fraction: Option<f32>, message: Option<&str>) {
        let message = message.map(str::to_owned);
        self.announce(task, &EventKind::Progress { fraction, message });
    }

    /// Stored in the row: the slot is free, and any process claims the job
    /// when it is due.
    fn retrying(&self, task: TaskRef<'_>, attempt: u32, delay: Duration, e: &TaskError) -> Backoff {
        let error = e;
        let retrying = EventKind::Retrying {
            attempt,
            backoff: delay,
            error: error.to_string(),
        };
        let announce =
            row_id(task.id()).and_then(|id| events::event(self.shared.owner, id, &retrying));
        self.report(task, End::Retry(error.to_string(), delay), announce);
        Backoff::Stored
    }

    fn settled(&self, task: TaskRef<'_>, status: &TaskStatus) {
        let end = match status {
            TaskStatus::Succeeded { .. } => End::Succeeded,
            TaskStatus::Failed { error, .. } => End::Failed(error.to_string()),
            TaskStatus::TimedOut { .. } => End::TimedOut,
            _ if self.shared.running.handing_back() => End::HandBack,
            _ => End::Cancelled,
        };
        // A job handed back has not ended: nothing to announce.
        let announce = (end != End::HandBack)
            .then(|| row_id(task.id()).map(|id| events::finished(self.shared.owner, id, status)))
            .flatten();
        self.report(task, end, announce);
    }

    fn cancel_unfinished(&self) {
        self.shared.running.hand_back_all();
    }
}

impl Postgres {
    /// Announces `kind` of `task`, run here, to other processes.
    fn announce(&self, task: TaskRef<'_>, kind: &EventKind) {
        if !self.shared.settings.notify {
            return;
        }
        if let Some(payload) =
            row_id(task.id()).and_then(|id| events::event(self.shared.owner, id, kind))
        {
            self.shared.completer.announce(payload);
        }
    }

    /// Hands the end of `task`'s attempt, as claimed, to the completer,
    /// with the event announcing it once written: its room is free at once,
    /// its lease kept until the outcome is written.
    fn report(&self, task: TaskRef<'_>, end: End, announce: Option<String>) {
        let Some(id) = row_id(task.id()) else {
            return;
        };
        // Held from before the offer: a job cancelled while still in line
        // never started its attempt, which the engine's count would not show.
        let attempt = match self.shared.running.end(id, task) {
            running::Ending::Held(attempt) => attempt,
            running::Ending::Replaced => return,
            running::Ending::Unknown => i32::try_from(task.attempts()).unwrap_or(i32::MAX),
        };
        let announce = announce.filter(|_| self.shared.settings.notify);
        self.shared.completer.report(Report {
            id,
            attempt,
            end,
            landed: None,
            announce,
        });
    }
}
