//! How the model builds the queue, applies each generated operation to it
//! and records what it did: the tasks accepted, refused, cancelled and
//! subscribed to.

use etiquette_core::{AddTaskError, Etiquette, OnFull, TaskHandle, TaskStatus};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::time::{sleep, timeout};

use super::clock::Clock;
use super::scenario::{Op, Scenario, Via};
use super::tasks::{InFlight, Witness};
use super::{CancelSeen, Model, Refused, Spec, Tracked, USER_GATES, fail};
use crate::support::Gate;

enum Added {
    Accepted(TaskHandle),
    Refused(AddTaskError),
    GaveUp,
}

impl From<Result<TaskHandle, AddTaskError>> for Added {
    fn from(result: Result<TaskHandle, AddTaskError>) -> Self {
        match result {
            Ok(handle) => Self::Accepted(handle),
            Err(error) => Self::Refused(error),
        }
    }
}

impl Model {
    pub(super) async fn run(clock: Clock, scenario: Scenario) -> Result<(), TestCaseError> {
        let Scenario { settings, ops, end } = scenario;
        let mut builder = Etiquette::builder()
            .max_concurrent_tasks(settings.max_concurrent_tasks)
            .queue_capacity(settings.queue_capacity)
            .on_full(settings.on_full)
            .event_buffer(settings.event_buffer);
        if let Some(limit) = settings.task_timeout {
            builder = builder.task_timeout(clock.ticks(limit));
        }
        let etiquette = builder
            .build()
            .map_err(|error| fail(format!("building the queue: {error}")))?;
        let mut model = Self {
            clock,
            settings,
            end,
            decorum: etiquette.decorum(),
            etiquette,
            in_flight: InFlight::default(),
            gates: (0..=USER_GATES).map(|_| Gate::closed()).collect(),
            opened: vec![false; USER_GATES + 1],
            tasks: Vec::new(),
            refused: Vec::new(),
            readers: Vec::new(),
        };
        for op in ops {
            model.apply(op).await?;
            let stats = model.decorum.stats();
            prop_assert!(
                stats.running <= settings.max_concurrent_tasks as u64,
                "stats show {} tasks running, above the limit",
                stats.running
            );
            // The documented bound on waiting tasks.
            prop_assert!(
                stats.queued + stats.retrying
                    <= settings.queue_capacity + settings.max_concurrent_tasks,
                "{} queued and {} retrying, above capacity {} + limit {}",
                stats.queued,
                stats.retrying,
                settings.queue_capacity,
                settings.max_concurrent_tasks
            );
        }
        let report = model.release().await?;
        model.check(report).await
    }

    async fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Add { body, via } => self.add(Spec::Once(body), via).await,
            Op::AddRetryable {
                kind,
                attempts,
                backoff,
                via,
            } => {
                let spec = Spec::Retryable {
                    kind,
                    attempts,
                    backoff,
                };
                self.add(spec, via).await
            }
            Op::Cancel(index) if !self.tasks.is_empty() => {
                self.cancel(index.index(self.tasks.len()))
            }
            Op::Subscribe(index) if !self.tasks.is_empty() => {
                self.subscribe(index.index(self.tasks.len()))
            }
            Op::Cancel(_) | Op::Subscribe(_) => Ok(()),
            Op::OpenGate(gate) => {
                self.open(gate);
                Ok(())
            }
            Op::Wait(0) => {
                tokio::task::yield_now().await;
                Ok(())
            }
            Op::Wait(ticks) => {
                sleep(self.clock.ticks(ticks)).await;
                Ok(())
            }
        }
    }

    pub(super) fn open(&mut self, gate: usize) {
        self.gates[gate].open();
        self.opened[gate] = true;
    }
    pub(super) async fn add(&mut self, spec: Spec, via: Via) -> Result<(), TestCaseError> {
        let witness = Witness::default();
        // Tasks waiting to retry hold a place too.
        let stats = self.decorum.stats();
        let queued_before = stats.queued + stats.retrying;
        let patience = self.clock.add_patience();
        let added = match spec {
            Spec::Once(body) => {
                let future = self.once(body, &witness);
                match via {
                    Via::Try => self.decorum.try_add_task(future).into(),
                    Via::Await => timeout(patience, self.decorum.add_task(future))
                        .await
                        .map_or(Added::GaveUp, Added::from),
                }
            }
            Spec::Retryable { .. } | Spec::Probe => {
                let builder = match spec {
                    Spec::Retryable {
                        kind,
                        attempts,
                        backoff,
                    } => self.retryable(kind, attempts, backoff, &witness),
                    _ => self.probe(&witness),
                };
                match via {
                    Via::Try => builder.try_add().into(),
                    Via::Await => timeout(patience, builder.add())
                        .await
                        .map_or(Added::GaveUp, Added::from),
                }
            }
        };
        let waits = self.settings.on_full == OnFull::Wait && via == Via::Await;
        match added {
            Added::Accepted(handle) => {
                let id = handle.id().get();
                let label = match spec {
                    Spec::Probe => format!("task {id} (pool probe)"),
                    _ => format!("task {id} ({spec:?}, {via:?})"),
                };
                prop_assert_eq!(
                    id,
                    self.tasks.len() as u64 + 1,
                    "ids are handed out in acceptance order from 1"
                );
                self.tasks.push(Tracked {
                    label,
                    spec,
                    handle,
                    cancels: Vec::new(),
                    unfinished_at_release: false,
                });
            }
            Added::Refused(AddTaskError::Full) => {
                prop_assert!(
                    !waits,
                    "add_task under OnFull::Wait returned Full instead of waiting"
                );
                if self.clock.exact() {
                    prop_assert!(
                        queued_before >= self.settings.queue_capacity,
                        "refused as full with {} of {} places taken (queued + retrying)",
                        queued_before,
                        self.settings.queue_capacity
                    );
                }
                self.refused.push(Refused {
                    label: format!("{spec:?} refused as full"),
                    witness,
                });
            }
            Added::Refused(error) => {
                return Err(fail(format!("{spec:?} refused before release: {error}")));
            }
            Added::GaveUp => {
                prop_assert!(waits, "only an add that waits for a place can take long");
                self.refused.push(Refused {
                    label: format!("{spec:?} given up waiting for a place"),
                    witness,
                });
            }
        }
        Ok(())
    }

    pub(super) fn cancel(&mut self, index: usize) -> Result<(), TestCaseError> {
        let exact = self.clock.exact();
        let task = &mut self.tasks[index];
        let before = task.handle.status_now();
        let returned = task.handle.cancel_now();
        let after = task.handle.status_now();
        let waiting = matches!(before, TaskStatus::Queued | TaskStatus::Retrying { .. });
        if exact {
            prop_assert_eq!(
                returned,
                !before.is_finished(),
                "{}: cancel() on a {} task",
                &task.label,
                before.name()
            );
            prop_assert!(
                !(returned && waiting) || matches!(after, TaskStatus::Cancelled),
                "{}: cancelled while {}, then {} instead of settled at once",
                &task.label,
                before.name(),
                after.name()
            );
        }
        task.cancels.push(CancelSeen { returned, waiting });
        Ok(())
    }

    fn subscribe(&mut self, index: usize) -> Result<(), TestCaseError> {
        let id = self.tasks[index].handle.id();
        let Some(mut subscription) = self.decorum.subscribe_task_now(id, None) else {
            return Err(fail(format!(
                "{}: subscribe_task found no such task",
                self.tasks[index].label
            )));
        };
        let reader = tokio::spawn(async move {
            let mut items = Vec::new();
            while let Some(item) = subscription.next().await {
                items.push(item);
            }
            items
        });
        self.readers.push((index, reader));
        Ok(())
    }
}
