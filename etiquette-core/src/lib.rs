//! A semaphored background queue: a request handler hands work off and
//! returns at once, while a bounded pool runs at most N tasks at a time, and
//! shutdown accounts for every task it ever accepted.
//!
//! ```
//! use etiquette_core::Etiquette;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // At start-up: at most 16 tasks run at once.
//! let etiquette = Etiquette::initiate(16)?;
//!
//! // In a request handler: hand work off, get an id back at once.
//! let decorum = etiquette.decorum();
//! let task = decorum.add_task(async { println!("sending the welcome email") }).await?;
//! println!("accepted task {}", task.id());
//!
//! // At shutdown: stop intake, run what was accepted, report.
//! let report = etiquette.release().await;
//! assert_eq!(report.completed, 1);
//! # Ok(()) }
//! ```
//!
//! # The pattern
//!
//! * [`Etiquette`] is the queue. Build it once, before the server starts,
//!   with [`Etiquette::initiate`] or [`Etiquette::builder`]; there is no
//!   global state, so a process may hold any number of queues.
//! * [`Decorum`] is the handle handlers receive (the web adapters inject it).
//!   [`Decorum::add_task`] waits for room when the queue is full
//!   (backpressure); [`Decorum::try_add_task`] fails at once with
//!   [`AddTaskError::Full`] instead, which adapters turn into
//!   `503 Service Unavailable` with `Retry-After`.
//! * Tasks start in the order they were accepted (by
//!   [priority](TaskBuilder::priority) first, if given, and not before their
//!   [start time](TaskBuilder::delay)), and never more than
//!   `max_concurrent_tasks` run at once, whatever they do: a task that
//!   panics is caught, logged and counted, and its slot serves the next task.
//! * Work is a future, a closure making one future per attempt
//!   ([`Decorum::task`]), or a typed [`Job`] ([`Decorum::job`]): data a
//!   durable backend can store, with a stable name and an async `run`.
//! * [`Etiquette::release`] closes intake and waits for every accepted task;
//!   [`Etiquette::release_timeout`] cancels what is left when a deadline
//!   passes. Either way the [`ReleaseReport`] accounts for every accepted
//!   task: `accepted == completed + failed + cancelled`.
//!
//! # Runtimes
//!
//! The queue runs its workers through the [`Spawner`] trait and uses tokio
//! only for its runtime-agnostic `sync` primitives. The default `tokio`
//! feature adds [`TokioSpawner`], bound to the runtime current when the queue
//! is built, so tasks handed over from actix-web's per-worker runtimes still
//! run on the application's main runtime.
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `tokio` | yes     | [`TokioSpawner`] and [`Etiquette::initiate`] |
//! | `metrics` | no    | counters, gauges and histograms through the `metrics` facade (see below) |
//! | `serde` | no      | `Serialize` for [`TaskStatus`], [`TaskEvent`] and [`Stats`] (flat JSON objects), `Serialize` and `Deserialize` for [`TaskId`], and `SseFrame` |
//! | `dashboard` | no  | `Dashboard`: the live dashboard the web adapters mount (implies `serde`) |
//!
//! # Observability
//!
//! Each task runs inside a `tracing` span `task` with a `task_id` field,
//! created where the task was added, so it nests under the request's span.
//! Failures are logged with the error's source chain, panics with their
//! message. [`Etiquette::stats`] returns a cheap [`Stats`] snapshot.
//!
//! With the `metrics` feature the queue also reports, labelled
//! `queue="<name>"` ([`Builder::name`]): the counters
//! `etiquette_tasks_{accepted,completed,failed,timed_out,retried,cancelled}_total`,
//! the gauges `etiquette_tasks_queued` and `etiquette_tasks_running`, and the
//! histograms `etiquette_task_queue_wait_seconds` (acceptance to first start)
//! and `etiquette_task_run_seconds` (each attempt). Install the recorder
//! before building the queue. The histograms read the clock about four
//! times per task, recorder or not: leave the feature off where nothing
//! collects the metrics.

/// `Clone` for a handle generic over its backend, by cloning its one
/// shared field (an `Arc` or a `Weak`): `derive(Clone)` would demand
/// `B: Clone`, which a backend need not be.
macro_rules! clone_by_field {
    ($handle:ident, $field:ident) => {
        impl<B: $crate::backend::Backend> Clone for $handle<B> {
            fn clone(&self) -> Self {
                Self {
                    $field: Clone::clone(&self.$field),
                }
            }
        }
    };
}

mod api;
pub mod backend;
/// The README's "API in one screen", run as a doc-test.
#[cfg(doctest)]
#[doc = concat!("```\n", include_str!("../examples/api_in_one_screen.rs"), "\n```")]
struct ApiInOneScreen;
mod engine;
mod events;
mod http;
mod memory;

pub use api::builder::{Builder, OnFull};
pub use api::context::TaskContext;
pub use api::decorum::Decorum;
pub use api::error::{AddTaskError, BackendError, BuildError, RetryTaskError, SpawnError};
pub use api::handle::TaskHandle;
pub use api::job::Job;
pub use api::queue::Etiquette;
pub use api::retry::{RetryParts, RetryPolicy};
#[cfg(feature = "tokio")]
pub use api::spawner::TokioSpawner;
pub use api::spawner::{BoxFuture, Spawner};
pub use api::stats::{ReleaseReport, Stats, StoredJobs};
pub use api::status::{TaskError, TaskStatus};
pub use api::task::{BoxError, TaskId, TaskOutput, error_chain};
pub use api::task_builder::TaskBuilder;
pub use backend::Memory;
pub use events::{EventKind, Lagged, Subscription, TaskEvent};
pub use http::{
    InvalidLastEventId, REJECTION_CONTENT_TYPE, Rejection, TaskLookupError, UnknownTask,
    parse_last_event_id,
};
#[cfg(feature = "serde")]
pub use http::{SSE_KEEP_ALIVE, SseFrame};
/// The live dashboard (feature `dashboard`): [`Dashboard`], and what a web
/// adapter exchanges with it.
#[cfg(feature = "dashboard")]
pub mod dashboard {
    #[doc(inline)]
    pub use crate::http::{
        ACTION_HEADER, Dashboard, DashboardBody, DashboardRequest, DashboardResponse, SseFrames,
    };
}
#[cfg(feature = "dashboard")]
pub use http::Dashboard;
