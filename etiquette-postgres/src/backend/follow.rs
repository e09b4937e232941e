//! Following jobs run elsewhere by their rows: every poll interval, one
//! statement reads the rows of the jobs followed here (none, no statement).
//!
//! * Without notifications (`notify(false)`, behind a transaction-pooling
//!   proxy) it is the only way: what the rows show changed is published,
//!   starts, retries and ends, not progress, which only notifications
//!   carry.
//! * With notifications, it catches the ends they lost: a notification
//!   sent while this process's LISTEN connection was away (a database
//!   restart, a process that had just started, a process running the job
//!   with notifications off) is never heard, and its followers would wait
//!   for ever. Only ends are taken from rows then; steps come from the
//!   notifications.

use std::collections::HashSet;
use std::sync::Arc;

use etiquette_core::TaskStatus;
use etiquette_core::backend::WeakEngine;

use super::{Postgres, Shared, status};
use crate::jobs;

/// Reads the followed jobs' rows every poll interval, until the queue is
/// gone.
pub(super) async fn follow_rows(engine: WeakEngine<Postgres>, shared: Arc<Shared>) {
    // With notifications, the steps are theirs: rows only end jobs.
    let steps = !shared.settings.notify;
    loop {
        tokio::time::sleep(shared.settings.poll).await;
        let ids = shared.watched.ids();
        if ids.is_empty() {
            if engine.upgrade().is_none() {
                return;
            }
            continue;
        }
        let read = match shared.intake.client().await {
            Ok(client) => jobs::stored_many(&client, &shared.statements, &ids).await,
            Err(error) => {
                tracing::warn!(%error, "following jobs by their rows: cannot connect");
                continue;
            }
        };
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let rows = match read {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "following jobs by their rows failed");
                continue;
            }
        };
        let mut missing: HashSet<i64> = ids.into_iter().collect();
        for (id, stored) in rows {
            missing.remove(&id);
            // A job running here has its steps published by the engine.
            let elsewhere = shared.running.task(id, None).is_none();
            let named = (
                status::status(&stored),
                shared.settings.jobs.name(&stored.name),
            );
            shared.watched.read(&engine, id, named, elsewhere && steps);
        }
        for id in missing {
            // Pruned: it finished long ago.
            shared
                .watched
                .finish_followed(&engine, id, TaskStatus::Cancelled);
        }
    }
}
