//! Upkeep: finished rows deleted once past their retention, in batches,
//! on a connection of its own, for as long as the queue lives.

use std::sync::Arc;

use etiquette_core::backend::WeakEngine;

use crate::connection::{Session, connect};
use crate::jobs;

use super::{Postgres, Shared};

/// Rows deleted per statement: short transactions, however many are due.
const BATCH: i64 = 10_000;

/// Every `prune_every`, deletes the rows finished longer than `retention`
/// ago; stops once the queue is gone.
pub(super) async fn prune(engine: WeakEngine<Postgres>, shared: Arc<Shared>) {
    let settings = &shared.settings;
    let mut client: Option<Session> = None;
    // An interval of zero would panic: 10 ms at the least.
    let period = settings
        .prune_every
        .max(std::time::Duration::from_millis(10));
    let mut every = tokio::time::interval(period);
    loop {
        every.tick().await;
        if engine.upgrade().is_none() {
            return;
        }
        if client.as_ref().is_none_or(|session| session.is_closed()) {
            client = connect(&settings.config).await.ok();
        }
        let Some(connected) = client.as_ref() else {
            tracing::warn!("pruning finished jobs: cannot connect; trying again later");
            continue;
        };
        match jobs::prune(connected, &shared.statements, settings.retention, BATCH).await {
            Ok(0) => {}
            Ok(pruned) => tracing::debug!(pruned, "finished jobs pruned"),
            Err(error) => tracing::warn!(%error, "pruning finished jobs failed"),
        }
    }
}
