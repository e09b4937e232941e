//! [actix-web] integration for [etiquette](etiquette_core): a semaphored
//! background queue registered as app data and injected into handlers as
//! the [`Decorum`] extractor.
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use etiquette_actix::{Decorum, Etiquette, TaskRejected};
//!
//! async fn send_welcome_email(decorum: Decorum) -> Result<HttpResponse, TaskRejected> {
//!     decorum.add_task(async { println!("email sent") }).await?;
//!     Ok(HttpResponse::Ok().body("OK"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Build the queue in `main`, before the server and outside its
//! //    factory: the factory runs once per worker.
//! let etiquette = Etiquette::initiate(16)?;
//! // 2. Register a clone in every worker's App.
//! let queue = etiquette.clone();
//! let factory = move || {
//!     App::new()
//!         .app_data(web::ThinData(queue.clone()))
//!         .route("/welcome", web::get().to(send_welcome_email))
//! };
//! // 3. Serve until the stop signal, with the same deadline for open
//! //    connections: HttpServer::new(factory).shutdown_signal(signal)
//! //        .shutdown_timeout(30).bind(..)?.run().await?;
//! # drop(factory);
//! // 4. At the signal, at once (not after the server returned): release
//! //    with a deadline. Intake closes now: a request waiting for room is
//! //    answered 503 instead of being accepted after the signal.
//! let report = etiquette.release_timeout(std::time::Duration::from_secs(30)).await;
//! println!("{report}");
//! # Ok(()) }
//! ```
//!
//! # Where tasks run
//!
//! actix-web gives each worker its own single-threaded runtime and drops the
//! tasks spawned on it when the worker stops. The queue instead runs every
//! task on the runtime it was built on (the one running `main`), under one
//! shared bound, so a task accepted by any worker keeps running after that
//! worker stops, until [`Etiquette::release`] drains it.
//!
//! # Registration
//!
//! [`Decorum`] looks for `web::ThinData<Etiquette>` or `web::Data<Etiquette>`
//! in the app data. Without either, extraction fails with
//! [`QueueNotRegistered`], a `500` whose body says what to add.
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
//! | `dashboard` | `dashboard()`: the queue's live dashboard as a scope to register (implies `sse`) |
//!
//! # Dashboard
//!
//! With the `dashboard` feature, one line serves a live page of the queue
//! (its counters and rates, the tasks running with their progress, the
//! retries and recent failures, each task's events):
//! `.service(etiquette_actix::dashboard("/etiquette", dashboard.clone()))`.
//! Read-only unless the application allows more; see `dashboard()` for
//! how to put it behind your authentication.
//!
//! # Errors as responses
//!
//! [`TaskRejected`] converts from [`AddTaskError`] with `?` and answers
//! `503 Service Unavailable`, with `Retry-After` when the queue is full.
//!
//! [actix-web]: https://docs.rs/actix-web

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
pub use rejection::{QueueNotRegistered, Rejected, TaskRejected};

// The core crate as `core`, and the core's types that handlers and `main`
// name.
etiquette_core::reexport_core!();
