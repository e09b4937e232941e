//! The connection handlers' adds and lookups go through: one per process,
//! pipelined (tokio-postgres sends concurrent statements on one connection
//! without waiting for each answer), made again when the database comes
//! back after it went away.

use std::sync::{Arc, Mutex, PoisonError};

use tokio_postgres::{Client, Config};

use crate::connection::connect;

pub(crate) struct Intake {
    config: Config,
    client: Mutex<Arc<Client>>,
}

impl Intake {
    pub(crate) fn new(config: Config, client: Client) -> Self {
        Self {
            config,
            client: Mutex::new(Arc::new(client)),
        }
    }

    /// The connection, made again if it was lost.
    pub(crate) async fn client(&self) -> Result<Arc<Client>, tokio_postgres::Error> {
        let current = Arc::clone(&self.client.lock().unwrap_or_else(PoisonError::into_inner));
        if !current.is_closed() {
            return Ok(current);
        }
        let fresh = Arc::new(connect(&self.config).await?);
        let mut client = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have connected meanwhile: keep one.
        if client.is_closed() {
            *client = Arc::clone(&fresh);
        }
        Ok(Arc::clone(&client))
    }
}
