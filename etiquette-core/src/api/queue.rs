//! The queue's owner handle ([`Etiquette`]): building, releasing, and
//! handing out [`Decorum`]s.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::Notify;

use crate::api::builder::Builder;
use crate::api::stats::Counters;
use crate::backend::{Backend, Engine, Memory};
use crate::engine::backlog::Backlog;
use crate::engine::shared::{Config, Shared};
use crate::engine::worker;
use crate::events::Events;
use crate::{BuildError, Decorum, ReleaseReport, Spawner, Stats};

/// A semaphored background queue: accepts tasks, runs at most
/// `max_concurrent_tasks` of them at once, and accounts for every one.
///
/// `Etiquette` is the owner's handle, kept where the application starts and
/// stops: it hands out [`Decorum`]s and [`release`](Self::release)s the
/// queue. Cloning is cheap (one `Arc`). Dropping every `Etiquette` and
/// `Decorum` without releasing discards nothing: the queue releases itself
/// in the background, running every accepted task, then its workers stop.
pub struct Etiquette<B: Backend = Memory> {
    inner: Arc<Inner<B>>,
}

clone_by_field!(Etiquette, inner);

/// Owned by the user's handles only, so that dropping the last one is seen.
pub(crate) struct Inner<B: Backend = Memory> {
    pub(crate) shared: Arc<Shared<B>>,
    /// What the queue's dashboards show, made by the first of them.
    #[cfg(feature = "dashboard")]
    pub(crate) board: std::sync::OnceLock<Arc<crate::http::dashboard::Board>>,
}

impl<B: Backend> Drop for Inner<B> {
    fn drop(&mut self) {
        // Not `is_released`: a release whose future was dropped half-way
        // closed intake but never stopped the workers or the event streams.
        if self.shared.reported.load(SeqCst) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        // If the executor is gone too, the accepted tasks went with it and
        // were reported cancelled as they were dropped.
        let _ = self.shared.spawner.spawn(Box::pin(async move {
            shared.release().await;
        }));
    }
}

impl Etiquette {
    /// Builds a queue running at most `max_concurrent_tasks` tasks at once on
    /// the current tokio runtime, with the default settings of [`Builder`].
    ///
    /// # Errors
    /// [`BuildError::ZeroConcurrency`] for 0, [`BuildError::NoRuntime`]
    /// outside a tokio runtime.
    #[cfg(feature = "tokio")]
    pub fn initiate(max_concurrent_tasks: usize) -> Result<Self, BuildError> {
        Builder::new()
            .max_concurrent_tasks(max_concurrent_tasks)
            .build()
    }

    /// Starts configuring a queue.
    pub const fn builder() -> Builder {
        Builder::new()
    }
}

impl<B: Backend> Etiquette<B> {
    pub(crate) fn start(
        config: Builder,
        spawner: Arc<dyn Spawner>,
        backend: B,
    ) -> Result<Self, BuildError> {
        let shared = Arc::new(Shared {
            backlog: Backlog::new(config.queue_capacity, config.max_concurrent_tasks),
            counters: Counters::default(),
            releasing: AtomicBool::new(false),
            reported: AtomicBool::new(false),
            drained: Notify::new(),
            workers_changed: Notify::new(),
            executor_lost: AtomicBool::new(false),
            backend,
            events: Events::new(config.event_buffer),
            deadline: AtomicBool::new(false),
            metrics: crate::engine::metrics::Metrics::new(config.name),
            spawner,
            config: Config {
                on_full: config.on_full,
                max_concurrent_tasks: config.max_concurrent_tasks,
                queue_capacity: config.queue_capacity,
                retry: config.retry,
                timeout: config.task_timeout,
            },
        });
        // One worker up front: it proves the executor takes work, and the
        // first task finds it waiting. The others start on demand.
        shared.backlog.first_worker();
        let started = worker::start(&shared)
            .map_err(BuildError::from)
            .and_then(|()| B::start(&Engine::new(Arc::clone(&shared))));
        if let Err(error) = started {
            shared.close_intake();
            shared.backlog.close();
            return Err(error);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                #[cfg(feature = "dashboard")]
                board: std::sync::OnceLock::new(),
            }),
        })
    }

    /// A handle for request handlers.
    pub fn decorum(&self) -> Decorum<B> {
        Decorum {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Stops intake, then waits until every accepted task (queued,
    /// scheduled, running or waiting to retry) has reached its outcome, and
    /// reports on all of them.
    ///
    /// Calling it again, or concurrently, is harmless: each call waits for
    /// the same drain and returns the same totals.
    ///
    /// Waits as long as the tasks take; a task that never finishes keeps it
    /// waiting. Use [`release_timeout`](Self::release_timeout) to bound that.
    ///
    /// # Cancel safety
    /// Dropping the future stops the waiting only: intake stays closed and
    /// the tasks keep running.
    pub async fn release(&self) -> ReleaseReport {
        self.inner.shared.release().await
    }

    /// Like [`release`](Self::release), but when `timeout` passes first,
    /// cancels every task still unfinished: running tasks are dropped at
    /// their next `.await`, queued and scheduled ones and those waiting to
    /// retry never run again. All of them are counted in [`ReleaseReport::cancelled`].
    ///
    /// Cancellation takes effect when a task yields: a task blocking its
    /// thread without ever yielding still delays the return.
    ///
    /// On a durable backend, every task settled, it then waits up to
    /// `timeout` again for their outcomes to be stored (the jobs handed
    /// back at the deadline included, so that other processes take them at
    /// once): a database that went away cannot take them, and those jobs
    /// run again elsewhere once their leases expire. Plan for twice
    /// `timeout` in all within a shutdown grace period (Kubernetes'
    /// `terminationGracePeriodSeconds`, systemd's `TimeoutStopSec`).
    ///
    /// # Cancel safety
    /// As for `release`. Once the deadline has fired, the cancellation
    /// stands even if this future is dropped.
    pub async fn release_timeout(&self, timeout: Duration) -> ReleaseReport {
        self.inner.shared.release_timeout(timeout).await
    }

    /// Whether [`release`](Self::release) has been called.
    pub fn is_released(&self) -> bool {
        self.inner.shared.is_released()
    }

    /// A snapshot of the queue's gauges and counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.stats()
    }

    /// Ends every event subscription (and so every SSE stream built on
    /// one) once it has delivered what it holds; later subscriptions end at
    /// once. Call it when shutdown begins: a server's graceful shutdown
    /// waits for open connections, and an event stream would otherwise keep
    /// one open for ever. [`release`](Self::release) does it too, once
    /// everything is settled.
    pub fn close_event_streams(&self) {
        self.inner.shared.events.close();
    }
}

impl<B: Backend> From<&Etiquette<B>> for Decorum<B> {
    fn from(etiquette: &Etiquette<B>) -> Self {
        etiquette.decorum()
    }
}

impl<B: Backend> From<Etiquette<B>> for Decorum<B> {
    /// Turns an owned `Etiquette` into a `Decorum` without touching the
    /// reference count.
    fn from(etiquette: Etiquette<B>) -> Self {
        Self {
            inner: etiquette.inner,
        }
    }
}

impl<B: Backend> fmt::Debug for Etiquette<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug("Etiquette", f)
    }
}

impl<B: Backend> fmt::Debug for Decorum<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug("Decorum", f)
    }
}

impl<B: Backend> Inner<B> {
    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        let stats = shared.stats();
        f.debug_struct(name)
            .field("max_concurrent_tasks", &shared.config.max_concurrent_tasks)
            .field("queue_capacity", &shared.config.queue_capacity)
            .field("queued", &stats.queued)
            .field("running", &stats.running)
            .field("released", &shared.is_released())
            .finish()
    }
}
