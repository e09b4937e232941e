//! Outcomes as a user tells them apart (from a handle, a status or a final
//! event), and the outcomes the model allows each task.

use std::fmt;

use etiquette_core::{EventKind, TaskError, TaskStatus};

use super::scenario::{Body, End, Retry};
use super::{Model, Spec, Tracked};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Succeeded,
    /// Failed with the task's own error.
    Failed,
    /// Failed with a panic of the task's own code.
    Panicked,
    TimedOut,
    Cancelled,
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Succeeded,
    Outcome::Failed,
    Outcome::Panicked,
    Outcome::TimedOut,
    Outcome::Cancelled,
];

/// A set of outcomes.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Outcomes(u8);

impl Outcomes {
    const NONE: Self = Self(0);

    const fn of(outcomes: &[Outcome]) -> Self {
        let mut set = 0;
        let mut i = 0;
        while i < outcomes.len() {
            set |= 1 << outcomes[i] as u8;
            i += 1;
        }
        Self(set)
    }

    pub(super) const fn contains(self, outcome: Outcome) -> bool {
        self.0 & (1 << outcome as u8) != 0
    }

    const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub(super) const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(OUTCOMES.iter().filter(|outcome| self.contains(**outcome)))
            .finish()
    }
}

use Outcome::{Cancelled, Failed, Panicked, Succeeded, TimedOut};

/// Never formats the error: an `Unprintable` one would panic here.
pub(super) fn outcome_of(result: &Result<(), TaskError>) -> Option<Outcome> {
    match result {
        Ok(()) => Some(Succeeded),
        Err(error) if error.is_panic() => Some(Panicked),
        Err(error) if error.is_timeout() => Some(TimedOut),
        Err(error) if error.is_cancelled() => Some(Cancelled),
        Err(error) if error.task_error().is_some() => Some(Failed),
        Err(_) => None,
    }
}

pub(super) fn status_outcome(status: &TaskStatus) -> Option<Outcome> {
    match status {
        TaskStatus::Succeeded { .. } => Some(Succeeded),
        TaskStatus::Failed { error, .. } if error.is_panic() => Some(Panicked),
        TaskStatus::Failed { .. } => Some(Failed),
        TaskStatus::TimedOut { .. } => Some(TimedOut),
        TaskStatus::Cancelled => Some(Cancelled),
        _ => None,
    }
}

/// The outcomes a final event may stand for.
pub(super) fn event_outcomes(kind: &EventKind) -> Outcomes {
    match kind {
        EventKind::Succeeded { .. } => Outcomes::of(&[Succeeded]),
        EventKind::Failed { .. } => Outcomes::of(&[Failed, Panicked]),
        EventKind::TimedOut { .. } => Outcomes::of(&[TimedOut]),
        EventKind::Cancelled => Outcomes::of(&[Cancelled]),
        _ => Outcomes::NONE,
    }
}

impl Model {
    /// What a task does if nothing cancels it, given the gates opened: the
    /// outcomes possible on this clock. Empty: it never finishes by itself.
    pub(super) fn natural(&self, spec: Spec) -> Outcomes {
        let exact = self.clock.exact();
        let limit = self.settings.task_timeout;
        let opens = |gate: usize| self.opened[gate];
        match spec {
            Spec::Probe => Outcomes::of(&[Succeeded]),
            Spec::Once(body) => match (body, limit) {
                (Body::Instant, _) => Outcomes::of(&[Succeeded]),
                (Body::Error, _) => Outcomes::of(&[Failed]),
                (Body::Panic | Body::Unprintable, _) => Outcomes::of(&[Panicked]),
                (Body::Yields(_) | Body::Sleep(_), None) => Outcomes::of(&[Succeeded]),
                // A paused clock does not move while tasks are ready.
                (Body::Yields(_), Some(_)) if exact => Outcomes::of(&[Succeeded]),
                (Body::Sleep(ticks), Some(limit)) if exact && ticks < limit => {
                    Outcomes::of(&[Succeeded])
                }
                (Body::Sleep(ticks), Some(limit)) if exact && ticks > limit => {
                    Outcomes::of(&[TimedOut])
                }
                (Body::Yields(_) | Body::Sleep(_), Some(_)) => Outcomes::of(&[Succeeded, TimedOut]),
                (Body::Gated(gate), None) if opens(gate) => Outcomes::of(&[Succeeded]),
                (Body::Gated(gate), Some(_)) if opens(gate) => Outcomes::of(&[Succeeded, TimedOut]),
                (Body::Gated(_) | Body::Never, Some(_)) => Outcomes::of(&[TimedOut]),
                (Body::Gated(_) | Body::Never, None) => Outcomes::NONE,
                // Cut by its time limit, its future panics as it is dropped.
                (Body::DropPanics(Some(gate)), None) if opens(gate) => Outcomes::of(&[Succeeded]),
                (Body::DropPanics(Some(gate)), Some(_)) if opens(gate) => {
                    Outcomes::of(&[Succeeded, Panicked])
                }
                (Body::DropPanics(_), Some(_)) => Outcomes::of(&[Panicked]),
                (Body::DropPanics(_), None) => Outcomes::NONE,
            },
            Spec::Retryable { kind, attempts, .. } => match kind {
                Retry::FailThenSucceed(failures) if failures < attempts => {
                    Outcomes::of(&[Succeeded])
                }
                Retry::FactoryPanics(at) if at <= attempts => Outcomes::of(&[Panicked]),
                Retry::FailThenSucceed(_) | Retry::AlwaysFail | Retry::FactoryPanics(_) => {
                    Outcomes::of(&[Failed])
                }
                Retry::TimesOut(_) => Outcomes::of(&[TimedOut]),
                Retry::PredicatePanics | Retry::Unprintable => Outcomes::of(&[Panicked]),
                Retry::HugeBackoff => Outcomes::NONE,
            },
        }
    }

    /// The outcomes the model allows a task, cancels and deadline included.
    pub(super) fn allowed(&self, task: &Tracked) -> Outcomes {
        // On the paused clock a task cancelled while queued or waiting to
        // retry is settled at once, whatever it would have done.
        if self.clock.exact() && task.cancels.iter().any(|c| c.returned && c.waiting) {
            return Outcomes::of(&[Cancelled]);
        }
        let mut allowed = self.natural(task.spec);
        // A running task sees its cancellation at its next `.await`, unless
        // it finished first. One whose future panics as it is dropped ends
        // panicked: the panic is its own, cancelled or not.
        let cut = if matches!(task.spec, Spec::Once(Body::DropPanics(_))) {
            Outcomes::of(&[Cancelled, Panicked])
        } else {
            Outcomes::of(&[Cancelled])
        };
        if task.cancels.iter().any(|c| c.returned) {
            allowed = allowed.union(cut);
        }
        if task.unfinished_at_release && matches!(self.end, End::ReleaseTimeout { .. }) {
            allowed = allowed.union(cut);
        }
        allowed
    }

    /// The attempts a task reports when it ended `outcome` (not cancelled,
    /// not panicked).
    pub(super) fn expected_attempts(spec: Spec, outcome: Outcome) -> Option<u32> {
        match (spec, outcome) {
            (_, Cancelled | Panicked) => None,
            (Spec::Once(_) | Spec::Probe, _) => Some(1),
            (Spec::Retryable { kind, .. }, Succeeded) => match kind {
                Retry::FailThenSucceed(failures) => Some(failures + 1),
                _ => None,
            },
            (Spec::Retryable { attempts, .. }, _) => Some(attempts),
        }
    }
}
