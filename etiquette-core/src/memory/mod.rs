//! Where the in-memory queue keeps its tasks' state: each task's cell (its
//! phase and status), the registry finding them by id, and the unique keys
//! of live tasks.

pub(crate) mod cell;
pub(crate) mod registry;
pub(crate) mod unique;
