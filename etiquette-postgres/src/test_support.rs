//! What the crate's tests share: a started server with etiquette's schema
//! migrated, and jobs to add.

use serde_json::Value;
use tokio_postgres::Client;

use crate::connection::Session;

use crate::jobs::{Inserted, NewJob, Statements, insert};
use crate::testing::TempServer;
use crate::{Schema, migrate};

/// A started server, etiquette's schema migrated in its `postgres`
/// database, and a connection to it. The server stops with the value.
pub(crate) struct Db {
    /// Its statements prepared once, as the crate's own connections'.
    pub(crate) client: Session,
    pub(crate) statements: Statements,
    pub(crate) server: TempServer,
}

pub(crate) async fn db() -> Db {
    let server = TempServer::start().unwrap_or_else(|error| panic!("{error}"));
    let mut client = server.connect("postgres").await.expect("connect");
    let schema = Schema::default();
    migrate(&mut client, &schema).await.expect("migrate");
    Db {
        client: Session::new(client),
        statements: Statements::new(&schema),
        server,
    }
}

/// No retry settings beyond the attempts: the defaults apply.
static NO_RETRY_SETTINGS: Value = Value::Null;

/// A job of queue `default`, three attempts, due now, no key, announced to
/// nobody.
pub(crate) fn job(args: &Value) -> NewJob<'_> {
    NewJob {
        queue: "default",
        name: "send_email",
        args,
        priority: 0,
        run_at: None,
        delay: None,
        max_attempts: 3,
        unique_key: None,
        retry: &NO_RETRY_SETTINGS,
        timeout: None,
        notify: false,
    }
}

/// The kinds [`job`]'s jobs are, as a claim takes them.
pub(crate) const KINDS: &[&str] = &["send_email"];

/// Claims for `owner` up to `limit` of [`job`]'s jobs, each under a lease
/// of `lease`, on the test's connection.
pub(crate) async fn claim_as(
    db: &Db,
    owner: i64,
    limit: i64,
    lease: std::time::Duration,
) -> Vec<crate::jobs::Claimed> {
    let claimed = crate::jobs::claim(
        &db.client,
        &db.statements,
        ("default", KINDS),
        owner,
        limit,
        lease,
    );
    claimed.await.expect("claimed")
}

/// The kinds the tests' jobs are: `send_email`, whose argument `n` is a
/// number, doing nothing.
pub(crate) fn kinds() -> crate::Jobs {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct SendEmail {
        n: u64,
    }

    impl etiquette_core::Job for SendEmail {
        const NAME: &'static str = "send_email";
        type Error = std::convert::Infallible;

        async fn run(&self, _context: etiquette_core::TaskContext) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    crate::Jobs::new().register::<SendEmail>().unwrap()
}

/// How many jobs run now, in every process.
pub(crate) async fn running(client: &Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM etiquette.jobs WHERE state = 'running'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Adds `n` jobs as [`job`] makes them, announced if `notify`; their ids.
pub(crate) async fn add(db: &Db, n: usize, notify: bool) -> Vec<i64> {
    let mut ids = Vec::new();
    for index in 0..n {
        let args = serde_json::json!({ "n": index });
        let new = NewJob {
            notify,
            ..job(&args)
        };
        match insert(db.client.parts(), &db.statements, &new)
            .await
            .unwrap()
        {
            Inserted::New(id) => ids.push(id),
            Inserted::Duplicate(id) => panic!("job {id} held no key"),
        }
    }
    ids
}
