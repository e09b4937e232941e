//! The crate's own connections: made with their I/O driven on a tokio
//! task, and made again after a growing pause while the database does not
//! answer.

use std::time::Duration;

use tokio_postgres::{Client, Config, NoTls};

/// Connects `config`, the connection driven on a tokio task until it ends.
pub(crate) async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends with an error when the server goes away: the client then
        // reports itself closed, and its owner connects again.
        let _ = connection.await;
    });
    Ok(client)
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
