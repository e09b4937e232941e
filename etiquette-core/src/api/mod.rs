//! The vocabulary: what users of the queue hold, call and read, the same
//! whatever stores the tasks.

pub(crate) mod builder;
pub(crate) mod context;
pub(crate) mod decorum;
pub(crate) mod error;
pub(crate) mod handle;
pub(crate) mod job;
pub(crate) mod queue;
pub(crate) mod retry;
#[cfg(feature = "serde")]
pub(crate) mod serde_impls;
pub(crate) mod spawner;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod task;
pub(crate) mod task_builder;
