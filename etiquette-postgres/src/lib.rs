//! The etiquette queue on PostgreSQL: durable, and shared by every process
//! that works it. The same `Etiquette`, `Decorum`, typed jobs, retries,
//! time limits and handles as the in-memory queue; the jobs live in a
//! table, so a `kill -9` loses none, and every process on every machine
//! that works the queue shares it.
//!
//! ```
//! use std::time::Duration;
//! use etiquette_core::{Etiquette, Job, RetryPolicy, TaskContext};
//! use etiquette_postgres::{Jobs, Postgres, testing::TempServer};
//! use serde::{Deserialize, Serialize};
//!
//! /// A job is data (stored as JSON) with a stable name and an async `run`.
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcome {
//!     user: String,
//! }
//!
//! impl Job for SendWelcome {
//!     const NAME: &'static str = "send_welcome";
//!     type Error = std::io::Error;
//!
//!     async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
//!         println!("welcome, {}", self.user);
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A real server, started for this example (`apt-get install postgresql`).
//! let server = TempServer::start()?;
//! let url = server.url("postgres");
//!
//! // At start-up, in every process: the kinds of jobs it runs, the
//! // database (its `etiquette` schema is created or updated), the queue.
//! let jobs = Jobs::new().register::<SendWelcome>()?;
//! let postgres = Postgres::builder(&url, jobs)?.connect().await?;
//! let etiquette = Etiquette::builder().max_concurrent_tasks(8).build_on(postgres)?;
//!
//! // In a handler: the job is stored before `add` returns.
//! let decorum = etiquette.decorum();
//! let welcome = decorum
//!     .job(SendWelcome { user: "ada".into() })
//!     .retry(RetryPolicy::exponential(5, Duration::from_secs(1)))
//!     .add()
//!     .await?;
//! welcome.outcome().await?; // run by whichever process claimed it
//! assert!(decorum.status(welcome.id()).await?.is_some_and(|status| status.is_finished()));
//!
//! // At shutdown: stop claiming, finish or hand back what this process holds.
//! let report = etiquette.release_timeout(Duration::from_secs(30)).await;
//! assert_eq!(report.completed, 1);
//! # Ok(()) }
//! ```
//!
//! # How it works
//!
//! * **Storage.** Its tables live in a schema of their own (`etiquette`
//!   unless you pick another with [`Schema::new`]), versioned in
//!   `<schema>.migrations` and migrated under an advisory lock when a
//!   process connects: the application's tables and migration history
//!   (`_sqlx_migrations`, …) are never touched. Building the crate needs no
//!   database: the SQL is plain text, prepared at run time.
//! * **At least once, with leases.** A process claims due jobs with `FOR
//!   UPDATE SKIP LOCKED`, as many as it has room for, under a lease that one
//!   batched heartbeat per process renews; a job's outcome is written fenced
//!   by owner and attempt, so a process that lost its lease can never
//!   overwrite a newer outcome. Any process rescues expired leases: a
//!   process that dies stops heartbeating, and its jobs run again elsewhere
//!   one lease later ([`PostgresBuilder::lease`]). Make jobs idempotent;
//!   unique keys help.
//! * **Waking.** One LISTEN connection per process, the NOTIFY sent in the
//!   adding statement, a poll as fallback, and a reconnection that polls
//!   again; [`PostgresBuilder::notify`] turns it off for
//!   transaction-pooling proxies (processes then poll, and follow jobs run
//!   elsewhere by reading their rows: starts, retries and ends, without
//!   progress).
//! * **The bound, across processes.** Besides each process's own
//!   `max_concurrent_tasks`, [`PostgresBuilder::max_running_across_processes`]
//!   holds a queue to N jobs running at once in all the processes that work
//!   it (their claims take turns on an advisory lock; expired leases do not
//!   count).
//! * **Retries** wait in their row (the policy is stored with the job, and
//!   a `retry_if` predicate, being code, is refused): the slot is free, and
//!   any process claims the job when it is due. Outcomes are written in
//!   batches (group commit).
//! * **Across processes.** Status by id and cancel work from any process; a
//!   running job cancelled elsewhere stops at its owner's next heartbeat.
//!   A job's events (started, progress, retrying, its end) are announced
//!   with `NOTIFY` (its end once its outcome is written), so
//!   `subscribe_task`, and the adapters' Server-Sent Events, follow a job
//!   run by any process.
//! * **Only the kinds it knows.** A process claims only jobs of the kinds
//!   it registered ([`Jobs`]); others wait for a process that knows them.
//!   During a rolling deploy, the old workers leave a kind only the new
//!   code has for the new workers, instead of failing it.
//! * **Processes that only add.** [`PostgresBuilder::work`]`(false)` makes
//!   a process that claims nothing (a web server in front of dedicated
//!   workers): it adds, looks up, cancels and follows jobs as any other.
//! * **Release** stops claiming, lets what this process holds finish, and
//!   at the deadline hands back what is left (claimable at once, the
//!   attempt not counted), then waits for the outcomes to be written.
//!
//! * **Upkeep.** Finished rows are deleted in batches once past their
//!   retention (a day by default, [`PostgresBuilder::prune`]), so the table
//!   does not bloat.
//!
//! * **Transactional add.** [`Postgres::add_in`] adds a job within the
//!   application's tokio-postgres transaction, and, with the `sqlx`
//!   feature, `Postgres::add_in_sqlx` within its sqlx transaction: the job
//!   exists if and only if the business row committed.
//!
//! | feature | what it adds |
//! |---------|--------------|
//! | `sqlx` | `Postgres::add_in_sqlx`, for applications that hold sqlx |

mod backend;
mod claimer;
mod completer;
mod connection;
mod jobs;
mod leases;
mod listener;
mod registry;
mod schema;
#[cfg(test)]
mod test_support;
pub mod testing;

pub use backend::{ConnectError, InvalidSetting, Postgres, PostgresBuilder};
pub use registry::{DecodeError, DuplicateJobName, Jobs};
pub use schema::{InvalidSchema, MigrateError, Migrated, SCHEMA_VERSION, Schema, migrate};
