//! The job the backend's tests run, and what they observe of it.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use etiquette_core::{Job, TaskContext};
use serde::{Deserialize, Serialize};

use crate::Jobs;

/// What each test's jobs did, by tag: the attempts that ran.
static RUNS: Mutex<Vec<(String, u32)>> = Mutex::new(Vec::new());

pub(super) fn runs(tag: &str) -> Vec<u32> {
    let runs = RUNS.lock().unwrap_or_else(PoisonError::into_inner);
    runs.iter()
        .filter(|(run, _)| run == tag)
        .map(|&(_, attempt)| attempt)
        .collect()
}

/// Attempts running now and the most ever running at once, by group (a
/// tag's part before `#`).
static IN_FLIGHT: Mutex<Vec<(String, u32, u32)>> = Mutex::new(Vec::new());

/// The most attempts of `group`'s jobs ever running at once, in every
/// process of the test.
pub(super) fn peak(group: &str) -> u32 {
    let in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    let found = in_flight.iter().find(|(name, _, _)| name == group);
    found.map_or(0, |&(_, _, peak)| peak)
}

/// The attempts of `group`'s jobs running now, in every process of the
/// test.
pub(super) fn in_flight(group: &str) -> u32 {
    let in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
    let found = in_flight.iter().find(|(name, _, _)| name == group);
    found.map_or(0, |&(_, now, _)| now)
}

/// One attempt of `group` running, for as long as it lives.
struct Flight(String);

impl Flight {
    fn start(tag: &str) -> Self {
        let group = tag.split('#').next().unwrap_or(tag).to_owned();
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        match in_flight.iter_mut().find(|(name, _, _)| *name == group) {
            Some((_, now, peak)) => {
                *now += 1;
                *peak = (*peak).max(*now);
            }
            None => in_flight.push((group.clone(), 1, 1)),
        }
        Self(group)
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut in_flight = IN_FLIGHT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, now, _)) = in_flight.iter_mut().find(|(name, _, _)| *name == self.0) {
            *now -= 1;
        }
    }
}

/// A job recording each attempt under its tag, failing its first
/// `fail_first` attempts (with `error` if given); its first attempt takes
/// `sleep_ms`.
#[derive(Serialize, Deserialize)]
pub(super) struct Tally {
    tag: String,
    fail_first: u32,
    sleep_ms: u64,
    /// Fail with an error holding a NUL character, which PostgreSQL's
    /// text cannot hold.
    #[serde(default)]
    nul_error: bool,
    /// Fail with this error.
    #[serde(default)]
    error: Option<String>,
    /// Its first attempt waits until the test opens its tag's gate
    /// ([`open`]), then reports progress.
    #[serde(default)]
    gated: bool,
    /// Its first attempt blocks its thread (deaf to cancels) until the
    /// test opens its tag's gate, then fails; its second waits for the
    /// gate `<tag>#2`.
    #[serde(default)]
    stubborn: bool,
}

/// The tags whose gates are open.
static OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Lets the gated job tagged `tag` go on.
pub(super) fn open(tag: &str) {
    OPENED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(tag.to_owned());
}

fn is_open(tag: &str) -> bool {
    let opened = OPENED.lock().unwrap_or_else(PoisonError::into_inner);
    opened.iter().any(|open| open == tag)
}

impl Tally {
    pub(super) fn new(tag: &str) -> Self {
        Self {
            tag: tag.to_owned(),
            fail_first: 0,
            sleep_ms: 0,
            nul_error: false,
            error: None,
            gated: false,
            stubborn: false,
        }
    }

    /// Failing its first attempt with `error`.
    pub(super) fn failing_with(self, error: &str) -> Self {
        Self {
            error: Some(error.to_owned()),
            ..self.failing(1)
        }
    }

    /// Failing its first `attempts` attempts.
    pub(super) fn failing(self, attempts: u32) -> Self {
        Self {
            fail_first: attempts,
            ..self
        }
    }

    /// Failing with an error PostgreSQL's text cannot hold.
    pub(super) fn failing_with_a_nul(self) -> Self {
        Self {
            nul_error: true,
            ..self.failing(1)
        }
    }

    /// Its first attempt waiting for the test to [`open`] its gate, then
    /// reporting progress.
    pub(super) fn gated(self) -> Self {
        Self {
            gated: true,
            ..self
        }
    }

    /// Its first attempt deaf to cancels until its gate opens, its second
    /// waiting for gate `<tag>#2`.
    pub(super) fn stubborn(self) -> Self {
        Self {
            stubborn: true,
            ..self
        }
    }

    /// Its first attempt taking `ms` milliseconds.
    pub(super) fn sleeping(self, ms: u64) -> Self {
        Self {
            sleep_ms: ms,
            ..self
        }
    }
}

impl Job for Tally {
    const NAME: &'static str = "tally";
    type Error = String;

    async fn run(&self, context: TaskContext) -> Result<(), String> {
        let attempt = context.attempt();
        let _flight = Flight::start(&self.tag);
        RUNS.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.tag.clone(), attempt));
        if self.stubborn {
            let gate = if attempt == 1 {
                while !is_open(&self.tag) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return Err("the stubborn attempt ends".to_owned());
            } else {
                format!("{}#2", self.tag)
            };
            while !is_open(&gate) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            return Ok(());
        }
        if self.gated && attempt == 1 {
            while !is_open(&self.tag) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            context.report(0.5, "half way");
        }
        if attempt == 1 {
            tokio::time::sleep(Duration::from_millis(self.sleep_ms)).await;
        }
        if attempt <= self.fail_first {
            if self.nul_error {
                return Err(format!("bad{}byte", '\0'));
            }
            if let Some(error) = &self.error {
                return Err(error.clone());
            }
            return Err(format!("attempt {attempt} fails on purpose"));
        }
        Ok(())
    }
}

pub(super) fn kinds() -> Jobs {
    Jobs::new().register::<Tally>().expect("one kind")
}
