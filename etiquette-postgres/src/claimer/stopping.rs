//! How a release stops a claimer's claims, shared by the claim loop and
//! the [`Claimer`](super::Claimer) the backend holds.

use std::sync::atomic::AtomicBool;

use tokio::sync::Notify;

/// Whether the claims stopped, and whether one is under way.
#[derive(Debug, Default)]
pub(super) struct Stopping {
    /// Set once the process releases its queue: no more claims, while the
    /// leases of held jobs are still renewed.
    pub(super) stopped: AtomicBool,
    /// Set while a claim is under way (from before it looks at `stopped`
    /// until its jobs are delivered), so that stopping can wait for it.
    pub(super) claiming: AtomicBool,
    /// Notified when a claim ends.
    pub(super) claimed: Notify,
}
