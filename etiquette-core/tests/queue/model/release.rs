//! How a case ends: the tasks that would never finish are cancelled, the
//! pool probe shows that no worker was lost, then the queue is released as
//! the scenario says.

use std::sync::atomic::Ordering::SeqCst;

use etiquette_core::ReleaseReport;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::time::{Instant, sleep, timeout};

use super::scenario::{End, Retry, Via};
use super::{Model, PROBE_GATE, Spec, USER_GATES, fail};

impl Model {
    /// Checks that the pool still runs `max_concurrent_tasks` bodies at
    /// once: adds as many tasks blocked at the probe gate, waits until
    /// every slot is busy (with them or with tasks stuck before them), then
    /// opens the gate.
    async fn probe_pool(&mut self) -> Result<(), TestCaseError> {
        let slots = self.settings.max_concurrent_tasks;
        let deadline = Instant::now() + self.clock.probe_bound();
        self.in_flight.reset_peak();
        let (mut added, mut full) = (0, 0);
        while self.in_flight.peak.load(SeqCst) < slots {
            if Instant::now() >= deadline {
                return Err(fail(format!(
                    "the pool ran no more than {} task bodies at once (of {slots}) since the \
                     probe began, with {added} probes added: a worker was lost; {}",
                    self.in_flight.peak.load(SeqCst),
                    self.unfinished()
                )));
            }
            if added < slots {
                let before = self.tasks.len();
                self.add(Spec::Probe, Via::Try).await?;
                if self.tasks.len() > before {
                    added += 1;
                    continue;
                }
                full += 1;
            }
            // A full queue: let the workers take what is queued, without
            // time passing, a few times; then let tasks ahead finish. A
            // paused clock only reaches the deadline if time passes.
            if added < slots && full % 8 != 0 {
                tokio::task::yield_now().await;
            } else {
                sleep(self.clock.tick()).await;
            }
        }
        self.open(PROBE_GATE);
        Ok(())
    }

    /// The unfinished tasks and where they stand, for failure messages.
    fn unfinished(&self) -> String {
        let unfinished: Vec<String> = self
            .tasks
            .iter()
            .filter_map(|task| {
                let status = task.handle.status_now();
                (!status.is_finished()).then(|| format!("{}: {}", task.label, status.name()))
            })
            .collect();
        format!("unfinished: [{}]", unfinished.join("; "))
    }

    pub(super) async fn release(&mut self) -> Result<ReleaseReport, TestCaseError> {
        let open_gates = match self.end {
            End::Release => true,
            End::ReleaseTimeout { open_gates, .. } => open_gates,
        };
        if open_gates {
            for gate in 0..USER_GATES {
                self.open(gate);
            }
        }
        if matches!(self.end, End::Release) {
            // `release()` waits for every task: cancel those that would
            // never finish.
            for index in 0..self.tasks.len() {
                let task = &self.tasks[index];
                if self.natural(task.spec).is_empty() && !task.handle.status_now().is_finished() {
                    self.cancel(index)?;
                }
            }
        }
        // A task waiting out an endless backoff holds its place for ever, and
        // intake stays closed while such tasks fill the queue: the probe
        // could add nothing. Cancel them first, whatever the end.
        for index in 0..self.tasks.len() {
            let task = &self.tasks[index];
            if matches!(
                task.spec,
                Spec::Retryable {
                    kind: Retry::HugeBackoff,
                    ..
                }
            ) && !task.handle.status_now().is_finished()
            {
                self.cancel(index)?;
            }
        }
        // A running task sees its cancellation at its next `.await`, and
        // all of ours wait: each settles promptly. Then no body about to be
        // dropped counts as busy for the probe.
        for task in &self.tasks {
            if task.cancels.iter().any(|cancel| cancel.returned) {
                let settled = timeout(self.clock.bound(), task.handle.outcome()).await;
                prop_assert!(
                    settled.is_ok(),
                    "{}: cancelled, but not settled within {:?}",
                    &task.label,
                    self.clock.bound()
                );
            }
        }
        self.probe_pool().await?;
        for task in &mut self.tasks {
            task.unfinished_at_release = !task.handle.status_now().is_finished();
        }
        let release = async {
            match self.end {
                End::Release => self.etiquette.release().await,
                End::ReleaseTimeout { after, .. } => {
                    self.etiquette
                        .release_timeout(self.clock.ticks(after))
                        .await
                }
            }
        };
        match timeout(self.clock.bound(), release).await {
            Ok(report) => Ok(report),
            Err(_) => Err(fail(format!(
                "{:?} did not return within {:?}; {}",
                self.end,
                self.clock.bound(),
                self.unfinished()
            ))),
        }
    }
}
