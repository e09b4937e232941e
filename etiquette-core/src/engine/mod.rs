//! The engine: accepting tasks, the line they wait in, the workers that
//! run them, each attempt with its time limit, cancel and retry, and the
//! one ledger that accounts for every outcome.

pub(crate) mod attempt;
pub(crate) mod backlog;
pub(crate) mod enqueue;
pub(crate) mod guard;
pub(crate) mod lanes;
pub(crate) mod later;
pub(crate) mod metrics;
pub(crate) mod shared;
pub(crate) mod signal;
pub(crate) mod work;
pub(crate) mod worker;
