//! Behaviour of `etiquette-core` as a user observes it. The same suite runs
//! on tokio and on a `futures` thread pool (see `executors.rs`); what only
//! tokio can show (paused clock, runtime binding) is in `tokio_runtime.rs`.

mod backend_seam;
mod behaviour;
mod events;
mod executors;
mod handles;
mod hardening;
mod jobs;
mod last_event_id;
#[cfg(feature = "metrics")]
mod metrics;
mod model;
mod panics_around_tasks;
mod readme;
mod retries;
mod retry_by_hand;
mod scheduling;
mod support;
mod survival;
mod tokio_runtime;
mod tracing_output;
