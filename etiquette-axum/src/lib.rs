//! [axum] integration for [etiquette](etiquette_core): a semaphored
//! background queue injected into handlers as the [`Decorum`] extractor.
//!
//! ```
//! use axum::{Router, routing::get};
//! use etiquette_axum::{Decorum, Etiquette, TaskRejected};
//!
//! async fn send_welcome_email(decorum: Decorum) -> Result<&'static str, TaskRejected> {
//!     decorum.add_task(async { println!("email sent") }).await?;
//!     Ok("OK")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Build the queue before the server.
//! let etiquette = Etiquette::initiate(16)?;
//! // 2. Put it in the router's state (or in a field of your own state
//! //    struct with `#[derive(FromRef)]`).
//! let app: Router = Router::new()
//!     .route("/welcome", get(send_welcome_email))
//!     .with_state(etiquette.clone());
//! // 3. Serve with graceful shutdown, until the stop signal:
//! //    axum::serve(listener, app).with_graceful_shutdown(signal).await?;
//! # drop(app);
//! // 4. At the signal, at once: release with a deadline (intake closes now,
//! //    so requests waiting for room are answered 503), while the server's
//! //    graceful stop gets the same deadline (see "Shutdown").
//! let report = etiquette.release_timeout(std::time::Duration::from_secs(30)).await;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # Extraction
//!
//! [`Decorum`] implements [`FromRequestParts<S>`](axum_core::extract::FromRequestParts)
//! for every state `S` from which an [`Etiquette`] can be taken with
//! [`FromRef`](axum_core::extract::FromRef): the queue itself as the whole
//! state, or a field of your state struct. Extraction cannot fail: a missing
//! queue is a compile error.
//!
//! # Task handles
//!
//! `add_task` returns a [`TaskHandle`]: its id for the response, its
//! status for a `GET /tasks/{id}` route (`decorum.status(id).await`, which
//! a database-backed queue answers too; with the `serde` feature
//! [`TaskStatus`] serializes to a flat JSON object), its outcome to await,
//! and `cancel()`.
//!
//! # Backends
//!
//! [`Decorum`] is generic over the queue's backend, the in-memory queue
//! ([`Memory`]) by default: a handler taking `Decorum<Postgres>` extracts
//! the handle of an `Etiquette<Postgres>` the same way.
//!
//! # Errors as responses
//!
//! [`TaskRejected`] converts from [`AddTaskError`] with `?` and answers
//! `503 Service Unavailable`, with `Retry-After: 1` when the queue is full.
//!
//! # Features
//!
//! | feature | what it adds |
//! |---------|--------------|
//! | `serde` | JSON for [`TaskStatus`], [`TaskId`] and task events |
//! | `metrics` | queue counters, gauges and histograms through the `metrics` facade |
//! | `sse`   | the `sse` module: task events as Server-Sent Events, with `Last-Event-ID` resumption |
//! | `dashboard` | `dashboard()`: the queue's live dashboard as a router to nest (implies `sse`) |
//!
//! # Dashboard
//!
//! With the `dashboard` feature, one line serves a live page of the queue
//! (its counters and rates, the tasks running with their progress, the
//! retries and recent failures, each task's events):
//! `.nest("/etiquette", etiquette_axum::dashboard(etiquette.clone()))`.
//! Read-only unless the application allows more; see `dashboard()` for
//! how to put it behind your authentication.
//!
//! # Shutdown
//!
//! Start [`Etiquette::release_timeout`] when the stop signal arrives, not
//! after the server returned: it closes intake at once (an add waiting for
//! room gets `Released`, answered 503, instead of being accepted after the
//! signal and cancelled at the deadline), and call
//! [`Etiquette::close_event_streams`] then, or open event streams hold the
//! server. `axum::serve(..).with_graceful_shutdown(..)` waits for open
//! connections without a deadline (a client that sends half a request holds
//! it for ever): bound it with `tokio::time::timeout` and the same
//! deadline, and await both. `examples/support.rs` (`run`) does all this
//! in twenty lines.
//!
//! [axum]: https://docs.rs/axum

#[cfg(feature = "dashboard")]
mod dashboard;
mod extract;
mod rejection;
#[cfg(feature = "sse")]
pub mod sse;

#[cfg(feature = "dashboard")]
pub use dashboard::dashboard;
#[cfg(feature = "dashboard")]
#[doc(inline)]
pub use etiquette_core::Dashboard;
pub use extract::Decorum;
pub use rejection::{Rejected, TaskRejected};

// The core crate as `core`, and the core's types that handlers and `main`
// name.
etiquette_core::reexport_core!();
