//! The workers' pool as the line sees it: how many workers run, which are
//! parked, and who is summoned when a job joins a line nobody is watching.

use std::sync::Arc;

use super::{Backlog, Line, lock};
use crate::engine::worker::Parker;

/// Idle workers kept parked; one more finding nothing to do retires.
pub(super) const PARKED_WORKERS_KEPT: usize = 8;

/// What the caller must do, outside the lock, to get a job run.
#[must_use]
pub(crate) enum Summon {
    Nobody,
    Wake(Arc<Parker>),
    /// Start a worker: already counted in `workers`.
    Start,
}

impl Backlog {
    /// Counts the first worker, started with the queue.
    pub(crate) fn first_worker(&self) {
        let mut line = lock(&self.line);
        line.workers += 1;
        line.summoning = true;
    }

    /// A worker dropped by its executor leaves the pool (one that stopped
    /// was uncounted by its claim). `coming` if it was woken or started and
    /// had not yet looked at the line: someone else must then be summoned.
    pub(crate) fn worker_dropped(&self, parker: &Arc<Parker>, coming: bool) -> Summon {
        let mut line = lock(&self.line);
        line.parked.retain(|parked| !Arc::ptr_eq(parked, parker));
        line.workers -= 1;
        if coming && line.summoning {
            line.summoning = false;
            // Only a parked worker: starting one from here could recurse
            // through an executor that drops whatever it is given.
            if line.jobs.len() > line.dead
                && let Some(next) = line.parked.pop()
            {
                line.summoning = true;
                return Summon::Wake(next);
            }
        }
        Summon::Nobody
    }

    /// After a worker died of a panic: gets another coming if work waits.
    pub(crate) fn replace_worker(&self) -> Summon {
        let mut line = lock(&self.line);
        if line.jobs.len() > line.dead {
            self.summon(&mut line)
        } else {
            Summon::Nobody
        }
    }

    /// Whether no worker is left.
    pub(crate) fn no_workers(&self) -> bool {
        lock(&self.line).workers == 0
    }

    /// Gets a worker coming for the line's next job, unless one is already.
    pub(super) fn summon(&self, line: &mut Line) -> Summon {
        if line.summoning {
            return Summon::Nobody;
        }
        if let Some(parker) = line.parked.pop() {
            line.summoning = true;
            return Summon::Wake(parker);
        }
        if line.workers < self.max_workers {
            line.workers += 1;
            line.summoning = true;
            return Summon::Start;
        }
        Summon::Nobody
    }
}
