//! The task that moves the jobs this process claims into its engine, and
//! cancels the attempts the claimer says must stop (a lost lease, a cancel
//! from some process). At release it stops the claims and gives back what
//! was claimed but not yet taken in, claimable at once by others.

use std::sync::Arc;
use std::time::Duration;

use etiquette_core::backend::{Offer, WeakEngine};
use tokio::sync::mpsc;
use tokio_postgres::Config;

use crate::claimer::{Claimer, Ready, Settings};
use crate::completer::End;
use crate::connection::{Pause, connect};
use crate::jobs::Statements;
use crate::listener::Events;

use super::{Postgres, Shared, retry, task_id};

/// Connects the claimer, then feeds the engine until the queue is gone.
pub(super) async fn feed(engine: WeakEngine<Postgres>, shared: Arc<Shared>, local_limit: usize) {
    let (heard, mut events) = mpsc::unbounded_channel();
    let Some(mut claimer) = start_claimer(&shared, local_limit, heard).await else {
        return;
    };
    let running = &shared.running;
    running.claimer_started();
    let mut closing = false;
    loop {
        tokio::select! {
            // Lost attempts first: one claimed again must be cancelled
            // before its next attempt is offered.
            biased;
            lost = claimer.lost.recv() => match lost {
                Some((id, attempt)) => {
                    if let Some(engine) = engine.upgrade() {
                        running.cancel(&engine, id, Some(attempt));
                    }
                }
                None => return,
            },
            ready = claimer.jobs.recv() => match ready {
                Some(ready) => take_in(&engine, &shared, ready).await,
                None => return,
            },
            Some(payload) = events.recv() => {
                if let Some(engine) = engine.upgrade() {
                    let hearer = (shared.owner, &shared.settings.jobs);
                    shared.watched.heard(&engine, hearer, &payload);
                }
            }
            () = running.closing.notified(), if !closing => {
                closing = true;
                // A claim under way delivers first: everything claimed is
                // handed back before the release may report.
                claimer.stop_claiming().await;
                while let Some(ready) = claimer.try_next() {
                    hand_back(&shared, ready.job.id, ready.job.attempt);
                }
                running.claims_stopped();
            }
        }
        if engine.upgrade().is_none() {
            // The queue is gone: what the claimer holds is left to its
            // leases, which stop being renewed as it is dropped.
            return;
        }
    }
}

/// The claimer, on a connection of its own, tried until the database
/// answers or the queue is gone.
async fn start_claimer(
    shared: &Arc<Shared>,
    local_limit: usize,
    heard: mpsc::UnboundedSender<String>,
) -> Option<Claimer> {
    let settings = &shared.settings;
    let config: Config = settings.config.clone();
    let mut pause = Pause::new();
    let client = loop {
        match connect(&config).await {
            Ok(client) => break client,
            Err(error) => {
                tracing::warn!(%error, pause = ?pause.next(), "the claimer cannot connect; trying again");
                pause.wait().await;
            }
        }
    };
    let lease = settings.lease;
    let statements = Statements::new(&settings.schema);
    let events = settings.notify.then(|| Events {
        channel: statements.events_channel.clone(),
        heard,
    });
    Some(Claimer::start(
        (client, config),
        statements,
        Settings {
            queue: settings.queue.clone(),
            owner: shared.owner,
            lease,
            heartbeat: lease / 3,
            poll: settings.poll,
            rescue: (lease / 2).max(Duration::from_millis(100)),
            local_limit,
            max_running: settings.max_running,
            listen: settings.notify,
        },
        (
            Arc::new(settings.jobs.clone()),
            Arc::clone(&shared.completer),
            events,
        ),
    ))
}

/// Offers a claimed job to the engine; gives it back if the engine takes
/// nothing more.
async fn take_in(engine: &WeakEngine<Postgres>, shared: &Shared, ready: Ready) {
    let Some(engine) = engine.upgrade() else {
        return hand_back(shared, ready.job.id, ready.job.attempt);
    };
    let Ready { job, kind, make } = ready;
    let (id, attempt) = (job.id, job.attempt);
    if let Some(older) = shared.running.expect(id, attempt, kind) {
        engine.cancel(&older);
    }
    let offer = Offer::new(task_id(id), kind, make)
        .attempt(u32::try_from(attempt).unwrap_or(1))
        .retry(retry::policy(job.max_attempts, &job.retry))
        .timeout(job.timeout)
        .priority(job.priority);
    match engine.offer(offer).await {
        Ok(local) => shared.running.hold(id, attempt, local),
        Err(_released) => hand_back(shared, id, attempt),
    }
}

/// Gives job `id`'s claimed attempt `attempt` back, claimable at once
/// (its lease held until the hand-back is written, as any outcome's).
fn hand_back(shared: &Shared, id: i64, attempt: i32) {
    shared.running.done(id, attempt);
    shared.completer.end(id, attempt, End::HandBack);
}
