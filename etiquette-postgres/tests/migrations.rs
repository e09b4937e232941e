//! Migrations against a real PostgreSQL server, started per test: fresh,
//! repeated, concurrent, beside the application's own tables, per schema,
//! and refused when they cannot be honoured.

use std::time::Duration;

use etiquette_postgres::testing::TempServer;
use etiquette_postgres::{MigrateError, SCHEMA_VERSION, Schema, migrate};
use tokio_postgres::Client;

fn start() -> TempServer {
    TempServer::start().unwrap_or_else(|error| panic!("{error}"))
}

async fn tables_in(client: &Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = $1 ORDER BY table_name",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn a_fresh_database_is_migrated_once_and_again_is_a_no_op() {
    let server = start();
    let mut client = server.connect("postgres").await.unwrap();
    let first = migrate(&mut client, &Schema::default()).await.unwrap();
    assert_eq!((first.from, first.to), (0, SCHEMA_VERSION));
    assert_eq!(
        tables_in(&client, "etiquette").await,
        ["jobs", "migrations"]
    );
    let again = migrate(&mut client, &Schema::default()).await.unwrap();
    assert_eq!((again.from, again.to), (SCHEMA_VERSION, SCHEMA_VERSION));
    let versions = client
        .query_one("SELECT count(*) FROM etiquette.migrations", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(versions, i64::from(SCHEMA_VERSION));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_at_once_migrate_once() {
    let server = start();
    let mut starting = Vec::new();
    for _ in 0..8 {
        let mut client = server.connect("postgres").await.unwrap();
        starting.push(tokio::spawn(async move {
            migrate(&mut client, &Schema::default()).await
        }));
    }
    let mut from_zero = 0;
    for process in starting {
        let migrated = tokio::time::timeout(Duration::from_secs(20), process)
            .await
            .expect("a migration took more than 20 s")
            .unwrap()
            .unwrap_or_else(|error| panic!("a concurrent migration failed: {error:?}"));
        from_zero += usize::from(migrated.from == 0);
    }
    assert_eq!(from_zero, 1, "exactly one process applies the migrations");
    let client = server.connect("postgres").await.unwrap();
    let rows = client
        .query("SELECT version FROM etiquette.migrations", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), usize::try_from(SCHEMA_VERSION).unwrap());
}

#[tokio::test]
async fn the_applications_tables_and_migration_history_are_never_touched() {
    let server = start();
    let mut client = server.connect("postgres").await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE public._sqlx_migrations (version bigint PRIMARY KEY, description text);
             INSERT INTO public._sqlx_migrations VALUES (1, 'users');
             CREATE TABLE public.users (id bigint PRIMARY KEY);",
        )
        .await
        .unwrap();
    migrate(&mut client, &Schema::default()).await.unwrap();
    assert_eq!(
        tables_in(&client, "public").await,
        ["_sqlx_migrations", "users"]
    );
    let history = client
        .query(
            "SELECT version, description FROM public._sqlx_migrations",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].get::<_, String>(1), "users");
}

#[tokio::test]
async fn each_schema_is_migrated_on_its_own() {
    let server = start();
    let mut client = server.connect("postgres").await.unwrap();
    for name in ["staging", "production"] {
        let schema = Schema::new(name).unwrap();
        assert_eq!(migrate(&mut client, &schema).await.unwrap().from, 0);
        assert_eq!(tables_in(&client, name).await, ["jobs", "migrations"]);
    }
    assert!(tables_in(&client, "etiquette").await.is_empty());
}

#[test]
fn schema_names_that_are_not_plain_identifiers_are_refused() {
    let long = "a".repeat(64);
    for name in [
        "",
        "Etiquette",
        "1jobs",
        "pg_jobs",
        "jobs; DROP TABLE users",
        "jobs\"",
        &long,
    ] {
        let error = Schema::new(name).unwrap_err();
        assert!(error.to_string().contains("invalid schema name"), "{error}");
    }
    assert_eq!(Schema::new("a".repeat(63)).unwrap().name().len(), 63);
    assert_eq!(Schema::default().name(), "etiquette");
}

#[tokio::test]
async fn a_schema_migrated_by_a_newer_release_is_refused_untouched() {
    let server = start();
    let mut client = server.connect("postgres").await.unwrap();
    migrate(&mut client, &Schema::default()).await.unwrap();
    client
        .execute(
            "INSERT INTO etiquette.migrations (version, name) VALUES (99, 'from the future')",
            &[],
        )
        .await
        .unwrap();
    let error = migrate(&mut client, &Schema::default()).await.unwrap_err();
    assert!(
        matches!(error, MigrateError::SchemaTooNew { found: 99, known } if known == SCHEMA_VERSION),
        "{error:?}"
    );
    assert!(error.to_string().contains("version 99"), "{error}");
}

#[tokio::test]
async fn a_database_gone_away_is_a_typed_error() {
    let server = start();
    let mut client = server.connect("postgres").await.unwrap();
    drop(server); // stops the server
    let error = tokio::time::timeout(
        Duration::from_secs(10),
        migrate(&mut client, &Schema::default()),
    )
    .await
    .expect("a migration against a stopped server took more than 10 s")
    .unwrap_err();
    assert!(matches!(error, MigrateError::Database(_)), "{error:?}");
    assert!(std::error::Error::source(&error).is_some());
}
