//! What the model's tasks are made of: the futures and retry factories of
//! each generated `Body` and `Retry`, the errors and panics they raise, the
//! pool probe's task, and the witnesses that count what runs.

use std::error::Error;
use std::fmt;
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use etiquette_core::{BoxError, RetryPolicy, TaskBuilder};
use tokio::time::sleep;

use super::scenario::{Body, Retry};
use super::{Model, PROBE_GATE};

type BodyFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

fn boxed(future: impl Future<Output = Result<(), BoxError>> + Send + 'static) -> BodyFuture {
    Box::pin(future)
}

#[derive(Debug)]
pub(super) struct ModelError;

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task of the model failed")
    }
}

impl Error for ModelError {}

/// An error whose `Display` panics. `Debug` does not.
#[derive(Debug)]
struct Unprintable;

impl fmt::Display for Unprintable {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("model: an error's Display panicked")
    }
}

impl Error for Unprintable {}

fn task_panics() -> Result<(), BoxError> {
    panic!("model: a task panicked")
}

fn factory_panics() -> BodyFuture {
    panic!("model: a retry factory panicked")
}

fn predicate_panics() -> bool {
    panic!("model: a retry_if predicate panicked")
}

/// Panics when dropped while armed.
struct PanicOnDrop {
    armed: bool,
}

impl PanicOnDrop {
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if self.armed && !std::thread::panicking() {
            panic!("model: a task's future panicked while being dropped");
        }
    }
}

/// Counts task bodies in flight; remembers the highest count ever seen and
/// the highest since the last `reset_peak`.
#[derive(Clone, Debug, Default)]
pub(super) struct InFlight {
    pub(super) now: Arc<AtomicUsize>,
    pub(super) max: Arc<AtomicUsize>,
    pub(super) peak: Arc<AtomicUsize>,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        self.peak.fetch_max(now, SeqCst);
        InFlightGuard(Arc::clone(&self.now))
    }

    pub(super) fn reset_peak(&self) {
        self.peak.store(self.now.load(SeqCst), SeqCst);
    }
}

struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Travels inside a task (its future or factory): tells whether it ran and
/// whether it was dropped.
#[derive(Clone, Debug, Default)]
pub(super) struct Witness {
    ran: Arc<AtomicBool>,
}

impl Witness {
    pub(super) fn ran(&self) -> bool {
        self.ran.load(SeqCst)
    }

    pub(super) fn dropped(&self) -> bool {
        Arc::strong_count(&self.ran) == 1
    }
}

/// What a body needs to be counted.
#[derive(Clone)]
struct Running {
    in_flight: InFlight,
    witness: Witness,
}

impl Running {
    fn enter(&self) -> InFlightGuard {
        self.witness.ran.store(true, SeqCst);
        self.in_flight.enter()
    }
}

impl Model {
    fn running(&self, witness: &Witness) -> Running {
        Running {
            in_flight: self.in_flight.clone(),
            witness: witness.clone(),
        }
    }

    pub(super) fn once(&self, body: Body, witness: &Witness) -> BodyFuture {
        let running = self.running(witness);
        let tick = self.clock.tick();
        match body {
            Body::Instant => boxed(async move {
                let _in = running.enter();
                Ok(())
            }),
            Body::Yields(times) => boxed(async move {
                let _in = running.enter();
                for _ in 0..times {
                    tokio::task::yield_now().await;
                }
                Ok(())
            }),
            Body::Sleep(ticks) => boxed(async move {
                let _in = running.enter();
                sleep(tick * ticks).await;
                Ok(())
            }),
            Body::Error => boxed(async move {
                let _in = running.enter();
                Err(ModelError.into())
            }),
            Body::Panic => boxed(async move {
                let _in = running.enter();
                task_panics()
            }),
            Body::Gated(gate) => {
                let gate = self.gates[gate].clone();
                boxed(async move {
                    let _in = running.enter();
                    gate.pass().await;
                    Ok(())
                })
            }
            Body::Never => boxed(async move {
                let _in = running.enter();
                pending::<()>().await;
                Ok(())
            }),
            Body::DropPanics(gate) => {
                let gate = gate.map(|gate| self.gates[gate].clone());
                boxed(async move {
                    let _in = running.enter();
                    let armed = PanicOnDrop { armed: true };
                    match gate {
                        Some(gate) => gate.pass().await,
                        None => pending::<()>().await,
                    }
                    armed.disarm();
                    Ok(())
                })
            }
            Body::Unprintable => boxed(async move {
                let _in = running.enter();
                Err(Unprintable.into())
            }),
        }
    }

    pub(super) fn retryable(
        &self,
        kind: Retry,
        attempts: u32,
        backoff: u32,
        witness: &Witness,
    ) -> TaskBuilder<'_> {
        let running = self.running(witness);
        let mut attempt = 0;
        let make = move || -> BodyFuture {
            running.witness.ran.store(true, SeqCst);
            attempt += 1;
            let running = running.clone();
            match kind {
                Retry::FailThenSucceed(failures) if attempt > failures => boxed(async move {
                    let _in = running.enter();
                    Ok(())
                }),
                Retry::TimesOut(_) => boxed(async move {
                    let _in = running.enter();
                    pending::<()>().await;
                    Ok(())
                }),
                Retry::FactoryPanics(at) if attempt == at => factory_panics(),
                Retry::Unprintable => boxed(async move {
                    let _in = running.enter();
                    Err(Unprintable.into())
                }),
                _ => boxed(async move {
                    let _in = running.enter();
                    Err(ModelError.into())
                }),
            }
        };
        let policy = match kind {
            Retry::PredicatePanics => RetryPolicy::exponential(attempts, self.clock.ticks(backoff))
                .retry_if(|_| predicate_panics()),
            Retry::HugeBackoff => {
                RetryPolicy::exponential(attempts, Duration::MAX).max_backoff(Duration::MAX)
            }
            _ => RetryPolicy::exponential(attempts, self.clock.ticks(backoff)),
        };
        let builder = self.decorum.task(make).retry(policy);
        match kind {
            Retry::TimesOut(limit) => builder.timeout(self.clock.ticks(limit)),
            _ => builder,
        }
    }

    /// A task blocked at the probe gate, with no time limit to cut it short.
    pub(super) fn probe(&self, witness: &Witness) -> TaskBuilder<'_> {
        let running = self.running(witness);
        let gate = self.gates[PROBE_GATE].clone();
        let mut future = Some(boxed(async move {
            let _in = running.enter();
            gate.pass().await;
            Ok(())
        }));
        self.decorum
            .task(move || future.take().unwrap_or_else(|| boxed(pending())))
            .retry(RetryPolicy::never())
            .no_timeout()
    }
}
