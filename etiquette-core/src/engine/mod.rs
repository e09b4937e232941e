//! The engine: the line of jobs waiting for a worker, the workers, each
//! attempt with its time limit, cancel and retry decision, each task's
//! state in this process, the one ledger that accounts for every outcome,
//! and release. Written once against a [`Backend`](crate::backend::Backend).

pub(crate) mod attempt;
pub(crate) mod backlog;
pub(crate) mod cell;
pub(crate) mod guard;
pub(crate) mod intake;
pub(crate) mod lanes;
pub(crate) mod later;
pub(crate) mod metrics;
pub(crate) mod shared;
pub(crate) mod signal;
pub(crate) mod work;
pub(crate) mod worker;
