//! The etiquette queue on PostgreSQL: durable, and shared by every process
//! that works it. **Work in progress** (issue 14): this release holds the
//! storage (its own schema, created and updated by embedded migrations),
//! the statements of a job's life (insert, claim with `SKIP LOCKED`,
//! heartbeat, completion fenced by owner and attempt, rescue of expired
//! leases, pruning in batches, a bound on running jobs across processes),
//! the one LISTEN connection per process that comes back after the database
//! restarts, a claimer that takes due jobs into a process as it has room
//! (woken by notifications or its poll), heartbeats their leases and rescues
//! the jobs of processes that died, a completer writing attempts' outcomes
//! in batches (group commit, fenced, surviving a database restart), the
//! registry of typed job kinds that makes a stored row a job again ([`Jobs`];
//! an unknown name or arguments that no longer deserialise are a clear
//! [`DecodeError`]), and a throwaway server for tests. The
//! backend that runs `etiquette-core`'s engine on them comes next.
//!
//! ```
//! use etiquette_postgres::{Schema, migrate, testing::TempServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A real server, started for this example (`apt-get install postgresql`).
//! let server = TempServer::start()?;
//! let mut client = server.connect("postgres").await?;
//!
//! // At start-up, in every process: creates or updates the `etiquette`
//! // schema; concurrent calls wait for each other.
//! let migrated = migrate(&mut client, &Schema::default()).await?;
//! assert_eq!((migrated.from, migrated.to), (0, etiquette_postgres::SCHEMA_VERSION));
//! assert_eq!(migrate(&mut client, &Schema::default()).await?.from, migrated.to);
//! # Ok(()) }
//! ```
//!
//! Its tables live in a schema of their own (`etiquette` unless you pick
//! another with [`Schema::new`]), versioned in `<schema>.migrations`: the
//! application's tables and migration history (`_sqlx_migrations`, …) are
//! never touched. Building the crate needs no database: the SQL is plain
//! text, prepared at run time.

// The statements the backend will run (issue 14), tested against a real
// server already; nothing outside the tests calls them yet.
#[cfg_attr(not(test), allow(dead_code))]
mod claimer;
#[cfg_attr(not(test), allow(dead_code))]
mod completer;
#[cfg_attr(not(test), allow(dead_code))]
mod connection;
#[cfg_attr(not(test), allow(dead_code))]
mod jobs;
#[cfg_attr(not(test), allow(dead_code))]
mod listener;
mod registry;
mod schema;
#[cfg(test)]
mod test_support;
pub mod testing;

pub use registry::{DecodeError, DuplicateJobName, Jobs};
pub use schema::{InvalidSchema, MigrateError, Migrated, SCHEMA_VERSION, Schema, migrate};
