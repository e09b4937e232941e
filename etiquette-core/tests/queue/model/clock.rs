//! The two clocks a case runs on: the paused one on a current-thread
//! runtime and the real one on two worker threads, their time units and
//! bounds, and the thread that runs a case under a real-time watchdog.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use proptest::test_runner::TestCaseError;

use super::scenario::Scenario;
use super::{Model, fail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clock {
    /// Current-thread runtime, paused clock: time moves only when all is
    /// idle, so timings are exact and a hang fails at once.
    Paused,
    /// Two worker threads and the real clock.
    Real,
}

impl Clock {
    pub(super) fn tick(self) -> Duration {
        match self {
            Self::Paused => Duration::from_millis(10),
            Self::Real => Duration::from_millis(1),
        }
    }

    pub(super) fn ticks(self, ticks: u32) -> Duration {
        self.tick() * ticks
    }

    /// How long any wait may take before the test fails.
    pub(super) fn bound(self) -> Duration {
        match self {
            Self::Paused => Duration::from_secs(600),
            Self::Real => Duration::from_secs(10),
        }
    }

    /// How long the pool probe waits for every slot to be busy.
    pub(super) fn probe_bound(self) -> Duration {
        match self {
            Self::Paused => self.ticks(500),
            Self::Real => self.bound(),
        }
    }

    /// How long an awaited add waits for a place before giving up.
    pub(super) fn add_patience(self) -> Duration {
        match self {
            Self::Paused => self.ticks(50),
            Self::Real => self.ticks(3),
        }
    }

    /// Whether the outcome of a race between timers, or between the test
    /// and a worker, is decided (on the paused current-thread runtime).
    pub(super) const fn exact(self) -> bool {
        matches!(self, Self::Paused)
    }
}

/// Real time a case may take. The bounds inside a case are on the case's
/// clock, and a paused clock only moves when all is idle: a busy loop would
/// never reach them.
const WATCHDOG: Duration = Duration::from_secs(60);

pub(super) fn run(clock: Clock, scenario: &Scenario) -> Result<(), TestCaseError> {
    let scenario = scenario.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("model case, {clock:?} clock"))
        .spawn(move || {
            let _ = sender.send(run_on_a_runtime(clock, scenario));
        })
        .map_err(|error| fail(format!("starting the case's thread: {error}")))?;
    match receiver.recv_timeout(WATCHDOG) {
        Ok(result) => result,
        // The thread is left behind: nothing can stop a busy loop.
        Err(RecvTimeoutError::Timeout) => Err(fail(format!(
            "the case still ran after {WATCHDOG:?} of real time: a busy loop?"
        ))),
        Err(RecvTimeoutError::Disconnected) => Err(fail("the case panicked (see above)")),
    }
}

fn run_on_a_runtime(clock: Clock, scenario: Scenario) -> Result<(), TestCaseError> {
    let runtime = match clock {
        Clock::Paused => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build(),
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .map_err(|error| fail(format!("building the runtime: {error}")))?;
    let result = runtime.block_on(Model::run(clock, scenario));
    // A failed case may leave tasks stuck at gates: drop them.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
