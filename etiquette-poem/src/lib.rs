//! [poem] integration for [etiquette](etiquette_core): a semaphored
//! background queue attached with `EndpointExt::data` and injected into
//! handlers as the [`Decorum`] extractor.
//!
//! ```
//! use poem::{EndpointExt, Route, get, handler};
//! use etiquette_poem::{Decorum, Etiquette, TaskRejected};
//!
//! #[handler]
//! async fn send_welcome_email(decorum: Decorum) -> Result<&'static str, TaskRejected> {
//!     decorum.add_task(async { println!("email sent") }).await?;
//!     Ok("OK")
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Build the queue before the server.
//! let etiquette = Etiquette::initiate(16)?;
//! // 2. Attach it to the endpoint.
//! let app = Route::new()
//!     .at("/welcome", get(send_welcome_email))
//!     .data(etiquette.clone());
//! // 3. Serve until the stop signal, giving open connections the same
//! //    deadline as the queue:
//! //    Server::new(listener)
//! //        .run_with_graceful_shutdown(app, signal, Some(Duration::from_secs(30)))
//! //        .await?;
//! # drop(app);
//! // 4. At the signal, at once (not after the server returned): release
//! //    with a deadline. Intake closes now: a request waiting for room is
//! //    answered 503 instead of being accepted after the signal.
//! let report = etiquette.release_timeout(std::time::Duration::from_secs(30)).await;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # Extraction
//!
//! [`Decorum`] reads the [`Etiquette`] attached with
//! `EndpointExt::data(etiquette)`; `Data<&Etiquette>` works too. Without it,
//! extraction fails with [`QueueNotRegistered`], a `500` whose body says what
//! to add.
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
//! # Features
//!
//! | feature | what it adds |
//! |---------|--------------|
//! | `serde` | JSON for [`TaskStatus`], [`TaskId`] and task events |
//! | `metrics` | queue counters, gauges and histograms through the `metrics` facade |
//! | `sse`   | the `sse` module: task events as Server-Sent Events, with `Last-Event-ID` resumption |
//! | `dashboard` | `dashboard()`: the queue's live dashboard as an endpoint to nest (implies `sse`) |
//!
//! # Dashboard
//!
//! With the `dashboard` feature, one line serves a live page of the queue
//! (its counters and rates, the tasks running with their progress, the
//! retries and recent failures, each task's events):
//! `.nest("/etiquette", etiquette_poem::dashboard(etiquette.clone()))`.
//! Read-only unless the application allows more; see `dashboard()` for
//! how to put it behind your authentication.
//!
//! # Errors as responses
//!
//! [`TaskRejected`] converts from [`AddTaskError`] with `?` and answers
//! `503 Service Unavailable`, with `Retry-After` when the queue is full.
//!
//! [poem]: https://docs.rs/poem

#[cfg(feature = "dashboard")]
mod dashboard;
mod extract;
mod rejection;
#[cfg(feature = "sse")]
pub mod sse;

#[cfg(feature = "dashboard")]
pub use dashboard::{DashboardEndpoint, dashboard};
#[cfg(feature = "dashboard")]
#[doc(inline)]
pub use etiquette_core::Dashboard;
pub use extract::Decorum;
pub use rejection::{QueueNotRegistered, Rejected, TaskRejected};

// The core crate as `core`, and the core's types that handlers and `main`
// name.
etiquette_core::reexport_core!();
