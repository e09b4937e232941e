//! The schema etiquette's tables live in, and the migrations that make
//! them: embedded in the crate, versioned in a table of their own
//! (`<schema>.migrations`), applied under an advisory lock so that many
//! processes may start at once. The application's own tables and migration
//! tables (`_sqlx_migrations`, `refinery_schema_history`, …) are never
//! touched.

use std::fmt;

use tokio_postgres::Client;

/// Every migration, in order: its version (from 1, no gaps), its name, its
/// SQL with `{schema}` for the quoted schema name.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "jobs", include_str!("migrations/0001_jobs.sql")),
    (
        2,
        "owner_only_while_running",
        include_str!("migrations/0002_owner_only_while_running.sql"),
    ),
];

/// The schema version this build of the crate knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Separates etiquette's advisory locks from the application's: the first
/// key of the two-key form (`pg_advisory_xact_lock(int, int)`), "et" in
/// ASCII.
const LOCK_CLASS: i32 = 0x6574;

/// The name of the schema etiquette's tables live in: `etiquette` unless
/// the application picks another (one per environment sharing a database,
/// say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema(String);

impl Schema {
    /// A schema name: 1 to 63 characters, lowercase ASCII letters, digits
    /// and `_`, not starting with a digit, and not `pg_…` (reserved).
    ///
    /// # Errors
    /// [`InvalidSchema`] for any other name.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidSchema> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with("pg_")
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidSchema(name))
        }
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The name quoted for SQL (already restricted to safe characters).
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self("etiquette".to_owned())
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A schema name [`Schema::new`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSchema(String);

impl fmt::Display for InvalidSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid schema name {:?}: use 1 to 63 lowercase ASCII letters, digits and `_`, \
             not starting with a digit or `pg_`",
            self.0
        )
    }
}

impl std::error::Error for InvalidSchema {}

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migrated {
    /// The schema's version before (0: it did not exist).
    pub from: i32,
    /// Its version now, [`SCHEMA_VERSION`].
    pub to: i32,
}

/// Why [`migrate`] failed; nothing was changed.
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database refused a statement, or went away.
    Database(tokio_postgres::Error),
    /// The schema is at a version this build does not know: a newer
    /// release migrated it. Run that release, or a newer one.
    SchemaTooNew {
        /// The schema's version.
        found: i32,
        /// The newest this build knows.
        known: i32,
    },
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database(_) => f.write_str("migrating etiquette's schema failed"),
            Self::SchemaTooNew { found, known } => write!(
                f,
                "etiquette's schema is at version {found}, newer than this build knows ({known}): \
                 a newer release migrated it"
            ),
        }
    }
}

impl std::error::Error for MigrateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Database(error) => Some(error),
            Self::SchemaTooNew { .. } => None,
        }
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Database(error)
    }
}

/// Creates or updates etiquette's tables in `schema`, in one transaction.
/// Safe to call from every process at start-up: concurrent calls wait for
/// each other on an advisory lock, and the first applies what is missing.
///
/// # Errors
/// [`MigrateError`]; on error nothing was changed.
pub async fn migrate(client: &mut Client, schema: &Schema) -> Result<Migrated, MigrateError> {
    let quoted = schema.quoted();
    let transaction = client.transaction().await?;
    // Held until commit; keyed by schema, so that two schemas in one
    // database migrate independently.
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            &[&LOCK_CLASS, &schema.name()],
        )
        .await?;
    transaction
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {quoted};
             CREATE TABLE IF NOT EXISTS {quoted}.migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );"
        ))
        .await?;
    let from: i32 = transaction
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {quoted}.migrations"),
            &[],
        )
        .await?
        .get(0);
    if from > SCHEMA_VERSION {
        return Err(MigrateError::SchemaTooNew {
            found: from,
            known: SCHEMA_VERSION,
        });
    }
    for &(version, name, sql) in &MIGRATIONS[usize::try_from(from).unwrap_or(0)..] {
        transaction
            .batch_execute(&sql.replace("{schema}", &quoted))
            .await?;
        transaction
            .execute(
                &format!("INSERT INTO {quoted}.migrations (version, name) VALUES ($1, $2)"),
                &[&version, &name],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}
