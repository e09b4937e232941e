//! What each web adapter re-exports from the core, listed once.

/// Re-exports, at a web adapter's root, the core crate as `core` and the
/// core's types that handlers and `main` name: all but the core's
/// `Decorum`, since the adapter has its own (see
/// [`define_decorum!`](crate::define_decorum)). The adapter depends on the
/// core with its `tokio` feature, for `TokioSpawner`.
#[doc(hidden)]
#[macro_export]
macro_rules! reexport_core {
    () => {
        /// The core crate, for what is not re-exported here (its own `Decorum`).
        pub use $crate as core;
        #[doc(inline)]
        pub use $crate::{
            AddTaskError, BackendError, BuildError, Builder, Etiquette, Job, Memory, OnFull,
            ReleaseReport, RetryPolicy, Stats, TaskBuilder, TaskContext, TaskError, TaskHandle,
            TaskId, TaskLookupError, TaskOutput, TaskStatus, TokioSpawner,
        };
    };
}
