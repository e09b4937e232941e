//! The backends every backend-generic case runs on: one [`Line`] each. A
//! new backend inherits those cases by implementing `Line` and adding one
//! line to `stamp!` in `main.rs`.

use std::future::Future;
use std::time::Duration;

use etiquette_core::Etiquette;
use etiquette_core::backend::{Backend, Memory};
use etiquette_postgres::testing::TempServer;
use etiquette_postgres::{Jobs, Postgres};
use etiquette_tests::Tally;

/// A backend under test, as a case builds its queue.
pub(crate) trait Line {
    type B: Backend;
    /// What must live as long as the queue (a database server).
    type Keep;
    /// Whether the queue keeps accepted tasks in this process: its stats
    /// count them as they are added, and a release runs (or cancels) every
    /// one of them. A durable backend keeps them in its store: release
    /// leaves the ones not yet claimed there.
    const KEEPS_TASKS_HERE: bool;

    /// A queue running at most `limit` tasks at once here.
    fn queue(limit: usize) -> impl Future<Output = (Etiquette<Self::B>, Self::Keep)>;
}

/// The in-memory queue.
pub(crate) struct InMemory;

impl Line for InMemory {
    type B = Memory;
    type Keep = ();
    const KEEPS_TASKS_HERE: bool = true;

    async fn queue(limit: usize) -> (Etiquette, ()) {
        (super::queue(limit), ())
    }
}

/// The durable queue, on a PostgreSQL server started for the case.
pub(crate) struct OnPostgres;

impl Line for OnPostgres {
    type B = Postgres;
    type Keep = TempServer;
    const KEEPS_TASKS_HERE: bool = false;

    async fn queue(limit: usize) -> (Etiquette<Postgres>, TempServer) {
        let server = TempServer::start().unwrap_or_else(|error| panic!("{error}"));
        let jobs = Jobs::new().register::<Tally>().expect("one kind");
        let postgres = Postgres::builder(&server.url("postgres"), jobs)
            .expect("a valid url")
            .poll(Duration::from_millis(50))
            .connect();
        let postgres = super::within("connecting to PostgreSQL", postgres)
            .await
            .expect("connect and migrate");
        let etiquette = Etiquette::builder()
            .max_concurrent_tasks(limit)
            .build_on(postgres)
            .expect("build");
        (etiquette, server)
    }
}
