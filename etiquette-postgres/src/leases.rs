//! The leases a process holds: each job from its claim until the outcome
//! of that attempt is written, shared by the claimer (which claims as the
//! attempts leave room, and renews every lease held here) and the
//! completer (through which every attempt ends here, and which says when
//! an outcome is written).
//!
//! An attempt's room and its lease end at different times on purpose. Its
//! room is free the moment the attempt ends here, so throughput never
//! waits for a write; its lease is kept until the write is done, because a
//! lease left to expire while the outcome waits (a slow commit, a database
//! away for a while) lets another process rescue a job that completed
//! here, and run it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// Where a held attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Claimed, and not ended here (waiting to be taken in, or running):
    /// it takes room under the local limit, and a lost lease cancels it.
    Running,
    /// Ended here, its outcome handed to the completer: its room is free,
    /// its lease kept until the outcome is written or refused.
    Writing,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    attempt: i32,
    stage: Stage,
}

#[derive(Debug, Default)]
struct Inner {
    /// By job id: one attempt of a job at a time is held here.
    held: Mutex<HashMap<i64, Lease>>,
    /// Notified when a running attempt ends here: room for another.
    freed: Notify,
}

/// The jobs this process holds under a lease; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leases(Arc<Inner>);

impl Leases {
    fn held(&self) -> MutexGuard<'_, HashMap<i64, Lease>> {
        self.0.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Job `id` was claimed for attempt `attempt`. Returns an older
    /// attempt of it still running here, to be cancelled: its lease was
    /// lost, and this process claimed the job again. (An older attempt
    /// still being written is simply forgotten: its write will be refused.)
    pub(crate) fn claimed(&self, id: i64, attempt: i32) -> Option<i32> {
        let running = Lease {
            attempt,
            stage: Stage::Running,
        };
        let older = self.held().insert(id, running)?;
        (older.stage == Stage::Running).then_some(older.attempt)
    }

    /// Job `id`'s attempt `attempt` ended here and its outcome is handed
    /// to the completer: its room serves another at once, its lease stays
    /// until [`settled`](Self::settled).
    pub(crate) fn ended(&self, id: i64, attempt: i32) {
        let mut held = self.held();
        let Some(lease) = held.get_mut(&id) else {
            return;
        };
        if lease.attempt != attempt || lease.stage != Stage::Running {
            return;
        }
        lease.stage = Stage::Writing;
        drop(held);
        self.0.freed.notify_one();
    }

    /// The completer is done with the outcomes of `attempts`: each was
    /// written, or refused (its lease was lost, or the database cannot
    /// store it and lets the lease expire). Their leases are renewed no
    /// longer.
    pub(crate) fn settled(&self, attempts: impl IntoIterator<Item = (i64, i32)>) {
        let mut held = self.held();
        let mut freed = false;
        for (id, attempt) in attempts {
            if let Some(lease) = held.get(&id)
                && lease.attempt == attempt
            {
                freed |= lease.stage == Stage::Running;
                held.remove(&id);
            }
        }
        drop(held);
        if freed {
            self.0.freed.notify_one();
        }
    }

    /// A heartbeat found job `id`'s lease of attempt `attempt` gone
    /// (rescued by another process, or its outcome written meanwhile): it
    /// is forgotten. Whether the attempt was still running here, and must
    /// be cancelled.
    pub(crate) fn lost(&self, id: i64, attempt: i32) -> bool {
        let mut held = self.held();
        match held.get(&id) {
            Some(lease) if lease.attempt == attempt => {
                let running = lease.stage == Stage::Running;
                held.remove(&id);
                running
            }
            _ => false,
        }
    }

    /// Every `(id, attempt)` whose lease is held, running or being
    /// written: what the heartbeat renews.
    pub(crate) fn leased(&self) -> Vec<(i64, i32)> {
        let held = self.held();
        held.iter()
            .map(|(&id, lease)| (id, lease.attempt))
            .collect()
    }

    /// How many attempts run here (or wait to be taken in): the room they
    /// take under the local limit.
    pub(crate) fn running(&self) -> usize {
        let held = self.held();
        held.values()
            .filter(|lease| lease.stage == Stage::Running)
            .count()
    }

    /// Whether job `id`'s attempt `attempt` still runs here.
    pub(crate) fn is_running(&self, id: i64, attempt: i32) -> bool {
        let held = self.held();
        held.get(&id)
            .is_some_and(|lease| lease.attempt == attempt && lease.stage == Stage::Running)
    }

    /// Resolves once a running attempt ended here (room was freed) since
    /// the last time it resolved.
    pub(crate) fn freed(&self) -> Notified<'_> {
        self.0.freed.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_attempt_frees_its_room_and_keeps_its_lease_until_settled() {
        let leases = Leases::default();
        assert_eq!(leases.claimed(1, 1), None);
        assert_eq!(leases.claimed(2, 1), None);
        assert_eq!(leases.running(), 2);
        leases.ended(1, 1);
        assert_eq!(leases.running(), 1, "the room is free at once");
        assert!(!leases.is_running(1, 1));
        let mut leased = leases.leased();
        leased.sort_unstable();
        assert_eq!(leased, [(1, 1), (2, 1)], "both leases are still renewed");
        leases.settled([(1, 1)]);
        assert_eq!(leases.leased(), [(2, 1)]);
    }

    #[test]
    fn an_outcome_of_an_older_attempt_touches_nothing_of_a_newer_one() {
        let leases = Leases::default();
        leases.claimed(1, 1);
        leases.ended(1, 1);
        // Written (a retry), and claimed again before the completer said so.
        assert_eq!(leases.claimed(1, 2), None, "attempt 1 was not running");
        leases.ended(1, 1);
        leases.settled([(1, 1)]);
        assert!(leases.is_running(1, 2));
        assert_eq!(leases.leased(), [(1, 2)]);
    }

    #[test]
    fn an_attempt_claimed_again_while_running_is_reported_older() {
        let leases = Leases::default();
        leases.claimed(1, 1);
        assert_eq!(leases.claimed(1, 2), Some(1));
        assert!(leases.is_running(1, 2));
    }

    #[test]
    fn a_lost_lease_cancels_only_an_attempt_still_running() {
        let leases = Leases::default();
        leases.claimed(1, 1);
        leases.claimed(2, 1);
        leases.ended(2, 1);
        assert!(leases.lost(1, 1), "running: to cancel");
        assert!(!leases.lost(2, 1), "being written: nothing to cancel");
        assert!(!leases.lost(3, 1), "never held");
        assert!(leases.leased().is_empty());
        assert_eq!(leases.running(), 0);
    }

    #[test]
    fn an_attempt_ends_once() {
        let leases = Leases::default();
        leases.claimed(1, 1);
        leases.ended(1, 1);
        leases.lost(1, 1);
        leases.ended(1, 1);
        assert!(leases.leased().is_empty(), "a late end brings nothing back");
    }
}
