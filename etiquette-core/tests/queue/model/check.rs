//! The checks after release: each task's outcome, status and attempts
//! against the model, the report and stats, the bound on task bodies at
//! once, the tasks refused, and every task subscription.

use std::sync::atomic::Ordering::SeqCst;

use etiquette_core::{AddTaskError, ReleaseReport, TaskError, TaskEvent};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::time::timeout;

use super::outcomes::Outcome::{Cancelled, Failed, Panicked, Succeeded, TimedOut};
use super::outcomes::{Outcome, event_outcomes, outcome_of, status_outcome};
use super::tasks::ModelError;
use super::{Model, Reader, STREAMS_SUBSCRIBED_AS_THE_TASK_SETTLES, Tracked, fail};

impl Model {
    pub(super) async fn check(&mut self, report: ReleaseReport) -> Result<(), TestCaseError> {
        let bound = self.clock.bound();
        let mut outcomes = Vec::with_capacity(self.tasks.len());
        // Retries of the tasks that ended otherwise than cancelled or
        // panicked: exact, as their attempts are.
        let (mut retries, mut uncertain_retries) = (0, false);
        for task in &self.tasks {
            let label = &task.label;
            let Ok(result) = timeout(bound, task.handle.outcome()).await else {
                return Err(fail(format!("{label}: no outcome after release")));
            };
            let outcome = outcome_of(&result)
                .ok_or_else(|| fail(format!("{label}: an error of no known kind")))?;
            if outcome == Failed {
                prop_assert!(
                    result
                        .as_ref()
                        .err()
                        .and_then(TaskError::task_error)
                        .is_some_and(|error| error.is::<ModelError>()),
                    "{}: failed with another error than its own",
                    label
                );
            }
            let status = task.handle.status_now();
            prop_assert!(
                status.is_finished(),
                "{}: {} after release",
                label,
                status.name()
            );
            prop_assert_eq!(
                status_outcome(&status),
                Some(outcome),
                "{}: status {} but outcome {:?}",
                label,
                status.name(),
                outcome
            );
            let found = self
                .decorum
                .handle(task.handle.id())
                .ok_or_else(|| fail(format!("{label}: no longer found by id")))?;
            prop_assert_eq!(
                status_outcome(&found.status_now()),
                Some(outcome),
                "{}: found by id with another status",
                label
            );
            let allowed = self.allowed(task);
            prop_assert!(
                allowed.contains(outcome),
                "{}: ended {:?}, the model allows {:?} (cancels {:?}, unfinished at release: {})",
                label,
                outcome,
                allowed,
                &task.cancels,
                task.unfinished_at_release
            );
            if let Some(attempts) = Self::expected_attempts(task.spec, outcome) {
                prop_assert_eq!(
                    status.attempts(),
                    attempts,
                    "{}: ended {:?} after an unexpected number of attempts",
                    label,
                    outcome
                );
            }
            if matches!(outcome, Cancelled | Panicked) {
                uncertain_retries = true;
            } else {
                retries += u64::from(status.attempts().max(1) - 1);
            }
            outcomes.push(outcome);
        }

        let count = |kinds: &[Outcome]| {
            outcomes
                .iter()
                .filter(|outcome| kinds.contains(outcome))
                .count() as u64
        };
        let accepted = self.tasks.len() as u64;
        prop_assert_eq!(report.accepted, accepted, "accepted, in {}", report);
        prop_assert_eq!(
            report.completed + report.failed + report.cancelled,
            report.accepted,
            "every accepted task is accounted for, in {}",
            report
        );
        prop_assert_eq!(
            report.completed,
            count(&[Succeeded]),
            "completed, in {}",
            report
        );
        prop_assert_eq!(
            report.failed,
            count(&[Failed, Panicked, TimedOut]),
            "failed, in {}",
            report
        );
        prop_assert_eq!(
            report.panicked,
            count(&[Panicked]),
            "panicked, in {}",
            report
        );
        prop_assert_eq!(
            report.timed_out,
            count(&[TimedOut]),
            "timed out, in {}",
            report
        );
        prop_assert_eq!(
            report.cancelled,
            count(&[Cancelled]),
            "cancelled, in {}",
            report
        );
        if uncertain_retries {
            prop_assert!(report.retried >= retries, "retried, in {}", report);
        } else {
            prop_assert_eq!(report.retried, retries, "retried, in {}", report);
        }

        let stats = self.etiquette.stats();
        prop_assert_eq!(
            ReleaseReport::from(stats),
            report,
            "stats after release match the report"
        );
        prop_assert_eq!((stats.queued, stats.running), (0, 0), "idle after release");
        let Ok(again) = timeout(bound, self.etiquette.release()).await else {
            return Err(fail("a second release did not return"));
        };
        prop_assert_eq!(again, report, "a second release reports the same");

        prop_assert!(
            self.in_flight.max.load(SeqCst) <= self.settings.max_concurrent_tasks,
            "{} task bodies ran at once, above the limit of {}",
            self.in_flight.max.load(SeqCst),
            self.settings.max_concurrent_tasks
        );
        prop_assert_eq!(
            self.in_flight.now.load(SeqCst),
            0,
            "task bodies still running after release"
        );

        for refused in &self.refused {
            prop_assert!(!refused.witness.ran(), "{} ran", &refused.label);
            prop_assert!(
                refused.witness.dropped(),
                "{} was not dropped",
                &refused.label
            );
        }
        let refused = self.decorum.try_add_task(async {});
        prop_assert!(matches!(refused, Err(AddTaskError::Released)));
        let Ok(refused) = timeout(bound, self.decorum.add_task(async {})).await else {
            return Err(fail("add_task after release did not return"));
        };
        prop_assert!(matches!(refused, Err(AddTaskError::Released)));

        for (index, reader) in std::mem::take(&mut self.readers) {
            self.check_subscription(&self.tasks[index], outcomes[index], reader)
                .await?;
        }
        for (task, outcome) in self.tasks.iter().zip(outcomes) {
            prop_assert_eq!(
                status_outcome(&task.handle.status_now()),
                Some(outcome),
                "{}: its final status changed",
                &task.label
            );
        }
        Ok(())
    }

    async fn check_subscription(
        &self,
        task: &Tracked,
        outcome: Outcome,
        reader: Reader,
    ) -> Result<(), TestCaseError> {
        let label = &task.label;
        let id = task.handle.id();
        let items = match timeout(self.clock.bound(), reader).await {
            Ok(Ok(items)) => items,
            Ok(Err(error)) => return Err(fail(format!("{label}: its reader failed: {error}"))),
            Err(_) => {
                return Err(fail(format!(
                    "{label}: its subscription did not end within {:?} of release",
                    self.clock.bound()
                )));
            }
        };
        let lagged = items.iter().any(Result::is_err);
        let events: Vec<&TaskEvent> = items.iter().filter_map(|item| item.as_ref().ok()).collect();
        prop_assert!(
            events.iter().all(|event| event.task == id),
            "{}: its subscription delivered another task's event",
            label
        );
        prop_assert!(
            events.windows(2).all(|pair| pair[0].id < pair[1].id),
            "{}: event ids out of order",
            label
        );
        let finals: Vec<&&TaskEvent> = events
            .iter()
            .filter(|event| event.kind.is_final())
            .collect();
        // The race of `STREAMS_SUBSCRIBED_AS_THE_TASK_SETTLES` leaves the
        // stream empty.
        let racing = !STREAMS_SUBSCRIBED_AS_THE_TASK_SETTLES
            && !self.clock.exact()
            && self.settings.event_buffer == 0
            && items.is_empty();
        if lagged || racing {
            prop_assert!(
                finals.len() <= 1,
                "{}: {} final events",
                label,
                finals.len()
            );
        } else {
            prop_assert_eq!(
                finals.len(),
                1,
                "{}: a subscription ends after exactly one final event: {:?}",
                label,
                &events
            );
            prop_assert!(
                items
                    .last()
                    .is_some_and(|item| item.as_ref().is_ok_and(|event| event.kind.is_final())),
                "{}: events after the final one: {:?}",
                label,
                &events
            );
        }
        if let Some(last) = finals.first() {
            prop_assert!(
                event_outcomes(&last.kind).contains(outcome),
                "{}: final event {} but outcome {:?}",
                label,
                last.kind.name(),
                outcome
            );
        }
        Ok(())
    }
}
