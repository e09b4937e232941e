//! Queue places, and settling a task that waits: a task holds one place
//! while it waits (queued, scheduled or waiting to retry) and none while it
//! runs; places given back repay those taken on credit first.

use std::sync::atomic::Ordering::Relaxed;

use super::{Backlog, Line, lock};
use crate::engine::attempt::Accepted;
use crate::engine::cell::{BACKOFF, QUEUED, SCHEDULED, TaskCell};

/// Cancelled jobs tolerated in the line before it is compacted, whatever
/// its length.
const COMPACT_AFTER: usize = 64;

impl Backlog {
    /// The worker running `cell` parks it for a retry: it takes a place
    /// back, on credit if none is free. Fails if the task was cancelled.
    pub(crate) fn enter_backoff(&self, cell: &TaskCell) -> bool {
        let mut line = lock(&self.line);
        if !cell.enter_backoff() {
            return false;
        }
        match self.places.try_acquire() {
            Ok(permit) => permit.forget(),
            // None free, or intake closed by a release: on credit.
            Err(_) => line.debt += 1,
        }
        self.retrying.fetch_add(1, Relaxed);
        true
    }

    /// Settles a waiting task (queued, scheduled or waiting to retry) from
    /// outside: a handle's cancel. Returns the phase it left, or `None` if it was not
    /// waiting, and the jobs a compaction removed, to drop outside the lock.
    pub(crate) fn settle_waiting(&self, cell: &TaskCell) -> (Option<u8>, Vec<Accepted>) {
        let mut line = lock(&self.line);
        let Some(phase) = cell.settle_if_waiting() else {
            return (None, Vec::new());
        };
        self.left_waiting(&mut line, phase);
        let mut removed = Vec::new();
        if phase == QUEUED {
            line.dead += 1;
            self.publish_len(&line);
            if line.dead > COMPACT_AFTER && line.dead * 2 > line.jobs.len() {
                // Order kept; the removed jobs are all settled already.
                removed = line.jobs.remove(|job| job.cell.is_settled());
                line.dead = 0;
            }
        }
        (Some(phase), removed)
    }

    /// Settles a task whose job the caller holds (a worker or retry timer),
    /// wherever it stands; `None` if someone else settled it first.
    pub(crate) fn settle_held(&self, cell: &TaskCell) -> Option<u8> {
        // Only the holder moves a task on from RUNNING, so no lock is needed
        // to settle a running task: the worker's usual path.
        if cell.is_running() {
            return cell.settle();
        }
        let mut line = lock(&self.line);
        let phase = cell.settle()?;
        self.left_waiting(&mut line, phase);
        Some(phase)
    }

    /// Gives back the place of a task the queue refused after its adder took
    /// one.
    pub(crate) fn refund_place(&self) {
        let mut line = lock(&self.line);
        self.give_back_place(&mut line);
    }

    /// Place bookkeeping for a task that left a waiting phase other than by
    /// a claim.
    pub(super) fn left_waiting(&self, line: &mut Line, phase: u8) {
        match phase {
            QUEUED => self.give_back_place(line),
            BACKOFF => {
                self.retrying.fetch_sub(1, Relaxed);
                self.give_back_place(line);
            }
            SCHEDULED => {
                self.scheduled.fetch_sub(1, Relaxed);
                self.give_back_place(line);
            }
            _ => {}
        }
    }

    /// Repays a place taken on credit first, so that intake stays closed
    /// while the line is over capacity.
    pub(super) fn give_back_place(&self, line: &mut Line) {
        if line.debt > 0 {
            line.debt -= 1;
        } else {
            self.places.add_permits(1);
        }
    }
}
