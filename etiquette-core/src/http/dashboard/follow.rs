//! How a queue's board is kept: one per queue, made by its first dashboard,
//! and written by a follower running on the queue's spawner, which takes
//! in every task event (its all-events subscription) and samples the
//! counters every second (and, on a durable backend, counts the jobs it
//! stores every two), until the queue closes its event streams.

use std::pin::pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::{Either, select};

use super::board::{Board, COUNTERS_EVERY, Limits, SAMPLE_EVERY, STORED_EVERY, Seen};
use crate::api::queue::Inner;
use crate::backend::{Backend, Engine};
use crate::engine::shared::Shared;
use crate::{BoxFuture, Lagged, Spawner, Subscription, TaskEvent, TaskId, TaskStatus};

/// The board of the queue `inner` belongs to, started on first use.
pub(crate) fn board_of<B: Backend>(inner: &Inner<B>) -> Arc<Board> {
    Arc::clone(inner.board.get_or_init(|| start(&inner.shared)))
}

fn start<B: Backend>(shared: &Arc<Shared<B>>) -> Arc<Board> {
    let board = Arc::new(Board::new(Limits {
        max_concurrent_tasks: shared.config.max_concurrent_tasks,
        queue_capacity: shared.config.queue_capacity,
    }));
    // Subscribed here, not in the follower: events from now on are on the
    // board, whenever the executor first polls it. The buffered ones
    // (`event_buffer`) come first.
    let subscription = shared.events.subscribe(None);
    // Weak: the follower must not keep a queue alive whose handles are all
    // dropped (its release starts when the last one goes).
    let queue = Arc::downgrade(shared);
    let spawner = Arc::clone(&shared.spawner);
    let follower = follow(Arc::clone(&board), subscription, queue, spawner);
    if shared.spawner.spawn(Box::pin(follower)).is_err() {
        // No executor: the board stays empty; the pages say it is closed.
        board.close();
    }
    board
}

/// What woke the follower.
enum Woke {
    /// The subscription's next item.
    Item(Option<Result<TaskEvent, Lagged>>),
    /// Time for a sample.
    Sample,
    /// Time to send the counters the events since the last changed.
    Counters,
}

async fn follow<B: Backend>(
    board: Arc<Board>,
    mut subscription: Subscription,
    queue: Weak<Shared<B>>,
    spawner: Arc<dyn Spawner>,
) {
    // The first sample at once, so that a page has counters from the start.
    let mut sample = spawner.sleep(Duration::ZERO);
    // Armed by the first event after the counters were last sent. (Timers
    // of the spawner, not `Instant`s: they keep the queue's own time, which
    // a test may have paused.)
    let mut counters: BoxFuture<()> = Box::pin(std::future::pending());
    let mut counters_armed = false;
    // Samples until the stored jobs are counted again; at once first.
    let mut stored_in = 0;
    loop {
        let woke = {
            let timers = select(&mut sample, &mut counters);
            match select(pin!(subscription.next()), timers).await {
                Either::Left((item, _)) => Woke::Item(item),
                Either::Right((Either::Left(_), _)) => Woke::Sample,
                Either::Right((Either::Right(_), _)) => Woke::Counters,
            }
        };
        match woke {
            Woke::Item(Some(Ok(event))) => {
                board.apply(Seen::now(event));
                if !counters_armed {
                    counters = spawner.sleep(COUNTERS_EVERY);
                    counters_armed = true;
                }
            }
            Woke::Item(Some(Err(lagged))) => {
                let Some(shared) = queue.upgrade() else { break };
                let statuses = statuses(&Engine::new(shared), board.unfinished()).await;
                board.correct(lagged.missed, statuses);
            }
            Woke::Item(None) => break,
            Woke::Sample => {
                let Some(shared) = queue.upgrade() else { break };
                board.sample(shared.stats(), shared.is_released());
                sample = spawner.sleep(SAMPLE_EVERY);
                if stored_in == 0 {
                    stored_in = STORED_EVERY;
                    // A count that fails (a database away) leaves the
                    // last one shown; the next sample asks again.
                    match B::stored_jobs(&Engine::new(shared)).await {
                        Ok(Some(stored)) => board.stored(stored),
                        Ok(None) => {}
                        Err(_unreachable) => stored_in = 1,
                    }
                }
                stored_in -= 1;
            }
            Woke::Counters => {
                let Some(shared) = queue.upgrade() else { break };
                board.counters(shared.stats(), shared.is_released());
                counters = Box::pin(std::future::pending());
                counters_armed = false;
            }
        }
    }
    // The counters as the queue closed, then nothing more.
    if let Some(shared) = queue.upgrade() {
        board.sample(shared.stats(), shared.is_released());
    }
    board.close();
}

/// Where each of `tasks` stands, asked of the backend; `None` for a task it
/// does not know. A task it could not be asked about is left out, and
/// stays on the board as it was.
async fn statuses<B: Backend>(
    engine: &Engine<B>,
    tasks: Vec<TaskId>,
) -> Vec<(TaskId, Option<TaskStatus>)> {
    let mut statuses = Vec::with_capacity(tasks.len());
    for id in tasks {
        let status = match B::find(engine, id).await {
            Ok(Some(handle)) => match handle.status().await {
                Ok(status) => Some(status),
                Err(_unreachable) => continue,
            },
            Ok(None) => None,
            Err(_unreachable) => continue,
        };
        statuses.push((id, status));
    }
    statuses
}
