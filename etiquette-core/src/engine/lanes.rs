//! The order in which waiting jobs leave the line: by priority (lower
//! first), then in the order they joined it.
//!
//! Most tasks keep the default priority, so they have a lane of their own
//! that costs what a plain queue costs; the other priorities get a lane
//! each, made when first used, in a sorted map that is empty, and never
//! looked into, while nobody uses priorities.

use std::collections::{BTreeMap, VecDeque};
use std::mem;

use crate::engine::attempt::Accepted;

/// The priority of a task added without one.
pub(crate) const DEFAULT_PRIORITY: i16 = 0;

#[derive(Default)]
pub(crate) struct Lanes {
    default: VecDeque<Accepted>,
    other: BTreeMap<i16, VecDeque<Accepted>>,
    len: usize,
}

impl Lanes {
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn push(&mut self, job: Accepted) {
        self.len += 1;
        if job.priority == DEFAULT_PRIORITY {
            self.default.push_back(job);
        } else {
            self.push_ranked(job);
        }
    }

    /// The job of the most urgent priority that joined first.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Accepted> {
        let job = if self.other.is_empty() {
            self.default.pop_front()
        } else {
            self.pop_ranked()
        };
        if job.is_some() {
            self.len -= 1;
        }
        job
    }

    #[cold]
    fn push_ranked(&mut self, job: Accepted) {
        self.other.entry(job.priority).or_default().push_back(job);
    }

    #[cold]
    fn pop_ranked(&mut self) -> Option<Accepted> {
        let mut lane = self.other.first_entry()?;
        if *lane.key() > DEFAULT_PRIORITY && !self.default.is_empty() {
            return self.default.pop_front();
        }
        let job = lane.get_mut().pop_front();
        if lane.get().is_empty() {
            lane.remove();
        }
        job
    }

    /// Removes the jobs `dead` says are dead, keeping the order of the
    /// others; returns the removed ones.
    pub(crate) fn remove(&mut self, dead: impl Fn(&Accepted) -> bool) -> Vec<Accepted> {
        let mut removed = Vec::new();
        for lane in std::iter::once(&mut self.default).chain(self.other.values_mut()) {
            let (gone, kept): (VecDeque<_>, VecDeque<_>) =
                mem::take(lane).into_iter().partition(&dead);
            *lane = kept;
            removed.extend(gone);
        }
        self.other.retain(|_, lane| !lane.is_empty());
        self.len -= removed.len();
        removed
    }

    /// Takes every job out, in the order they would have left.
    pub(crate) fn take_all(&mut self) -> Vec<Accepted> {
        let mut all = Vec::with_capacity(self.len);
        while let Some(job) = self.pop() {
            all.push(job);
        }
        all
    }
}
