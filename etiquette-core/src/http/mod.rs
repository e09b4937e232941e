//! What the web adapters share, so that axum, actix-web and poem answer the
//! same request the same way: what a queue error answers (`rejection.rs`),
//! how `Last-Event-ID` is read (`last_event_id.rs`), how task events are
//! framed as Server-Sent Events (`sse.rs`), and what every adapter declares
//! or re-exports the same way (`decorum.rs`, `sse_endpoints.rs`,
//! `reexport.rs`), and the live dashboard (`dashboard/`, feature
//! `dashboard`).
//!
//! The framework-free part is plain code here. What must be a type of the
//! adapter's own (a framework's trait cannot be implemented for a type of
//! this crate) is declared here once, as a macro the adapter invokes; the
//! adapter then adds only its framework's trait impls.

#[cfg(feature = "dashboard")]
pub(crate) mod dashboard;
mod decorum;
mod last_event_id;
mod reexport;
mod rejection;
#[cfg(feature = "serde")]
mod sse;
#[cfg(feature = "serde")]
mod sse_endpoints;

#[cfg(feature = "dashboard")]
pub use dashboard::{
    ACTION_HEADER, Dashboard, DashboardBody, DashboardRequest, DashboardResponse, SseFrames,
};
pub use last_event_id::{InvalidLastEventId, parse_last_event_id};
pub use rejection::{REJECTION_CONTENT_TYPE, Rejection, TaskLookupError, UnknownTask};
#[cfg(feature = "serde")]
pub use sse::{SSE_KEEP_ALIVE, SseFrame};
