//! The crate's own connections: made with their I/O driven on a tokio
//! task, each statement prepared once per connection, and made again after
//! a growing pause while the database does not answer.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Error, GenericClient, NoTls, Row, Statement};

/// Connects `config`, the connection driven on a tokio task until it ends.
pub(crate) async fn connect(config: &Config) -> Result<Session, Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends with an error when the server goes away: the client then
        // reports itself closed, and its owner connects again.
        let _ = connection.await;
    });
    Ok(Session::new(client))
}

/// The statements one connection prepared, by their text, each prepared
/// once. A statement sent as text is prepared again at every use: one
/// more round trip, and the server parses and plans it each time (a group
/// of 20 adds spent 0.6 ms planning and 1.6 ms running). Prepared once, the
/// server plans it for its first uses and then keeps a generic plan.
///
/// The crate's statements are fixed texts (one per statement and schema),
/// so the cache stays small. A statement prepared before a migration
/// changed its table is planned again by the server.
#[derive(Default)]
pub(crate) struct Prepared(Mutex<HashMap<String, Statement>>);

impl Prepared {
    /// `sql` prepared on `client`, the connection this cache belongs to.
    pub(crate) async fn get(
        &self,
        client: &impl GenericClient,
        sql: &str,
    ) -> Result<Statement, Error> {
        let known = self.lock().get(sql).cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = client.prepare(sql).await?;
        self.lock().insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Statement>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One of the crate's own connections: a client whose `query`,
/// `query_one`, `query_opt` and `execute` prepare each statement once ([`Prepared`]).
/// Everything else is the client's ([`Deref`]).
pub(crate) struct Session {
    client: Client,
    prepared: Prepared,
}

impl Session {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            prepared: Prepared::default(),
        }
    }

    /// The client alone (for the testing helpers, which hand it out).
    pub(crate) fn into_client(self) -> Client {
        self.client
    }

    /// `sql` prepared on this connection.
    pub(crate) async fn statement(&self, sql: &str) -> Result<Statement, Error> {
        self.prepared.get(&self.client, sql).await
    }

    /// The client and the cache of its prepared statements, for the
    /// statements that take any client (the application's too).
    pub(crate) const fn parts(&self) -> (&Client, &Prepared) {
        (&self.client, &self.prepared)
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await
    }

    pub(crate) async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, Error> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, params).await
    }

    pub(crate) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, Error> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await
    }
}

impl Deref for Session {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Session {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Whether the server refused a value of a statement (SQLSTATE classes 22,
/// data exception, 23, integrity constraint, and 54, program limit):
/// trying the statement again cannot help, unlike a lost connection.
pub(crate) fn refused_value(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| matches!(code.code().get(..2), Some("22" | "23" | "54")))
}

/// The pause between tries against a database that does not answer:
/// doubled after each, from 50 ms up to 5 s.
#[derive(Debug)]
pub(crate) struct Pause(Duration);

impl Pause {
    const FIRST: Duration = Duration::from_millis(50);
    const LONGEST: Duration = Duration::from_secs(5);

    pub(crate) const fn new() -> Self {
        Self(Self::FIRST)
    }

    /// The pause the next [`wait`](Self::wait) takes.
    pub(crate) const fn next(&self) -> Duration {
        self.0
    }

    /// The database answered: the next pause is the first again.
    pub(crate) const fn reset(&mut self) {
        self.0 = Self::FIRST;
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Self::LONGEST);
    }
}
