//! Shared pieces of the cross-framework behaviour suite: the tasks every
//! app hands off, and the [`Probe`] through which a test observes them.
//!
//! Each framework's app routes requests to these tasks in a few lines, so the
//! suite tests the adapters, not three copies of the task logic.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etiquette_core::{AddTaskError, Decorum, Job, TaskContext, TaskHandle};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};

/// What the tasks did, shared between the app under test and the test.
#[derive(Debug, Clone)]
pub struct Probe {
    inner: Arc<ProbeInner>,
}

#[derive(Debug)]
struct ProbeInner {
    safe: AtomicU64,
    racy: AtomicU64,
    /// The `n` of each [`Tally`] job, in the order they ran.
    tallied: Mutex<Vec<u64>>,
    /// Closed means open: tasks waiting at the gate all pass once it closes.
    gate: Semaphore,
    signals: mpsc::UnboundedSender<()>,
}

/// Receives one signal per task that reached its observation point.
#[derive(Debug)]
pub struct Signals(mpsc::UnboundedReceiver<()>);

impl Signals {
    /// Waits until `n` more tasks have signalled.
    pub async fn wait_for(&mut self, n: usize) {
        for _ in 0..n {
            self.0.recv().await.expect("the probe was dropped");
        }
    }
}

/// A task failure with a cause, as real tasks produce.
#[derive(Debug)]
pub struct DeliberateFailure;

impl std::fmt::Display for DeliberateFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deliberate failure")
    }
}

impl std::error::Error for DeliberateFailure {}

impl Probe {
    /// A probe with its gate shut, and the receiver of its signals.
    pub fn new() -> (Self, Signals) {
        let (signals, receiver) = mpsc::unbounded_channel();
        let inner = ProbeInner {
            safe: AtomicU64::new(0),
            racy: AtomicU64::new(0),
            tallied: Mutex::default(),
            gate: Semaphore::new(0),
            signals,
        };
        (
            Self {
                inner: Arc::new(inner),
            },
            Signals(receiver),
        )
    }

    /// Lets every task waiting at the gate, and every later one, through.
    pub fn open_gate(&self) {
        self.inner.gate.close();
    }

    /// The correctly synchronised counter.
    pub fn safe(&self) -> u64 {
        self.inner.safe.load(SeqCst)
    }

    /// The `n` of each [`Tally`] job run so far, in the order they ran.
    pub fn tallied(&self) -> Vec<u64> {
        self.inner
            .tallied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The counter updated with a lost-update race.
    pub fn racy(&self) -> u64 {
        self.inner.racy.load(SeqCst)
    }

    async fn pass_gate(&self) {
        let _ = self.inner.gate.acquire().await;
    }

    fn signal(&self) {
        let _ = self.inner.signals.send(());
    }

    /// Adds `n` to the safe counter atomically.
    pub fn add(&self, n: u64) -> impl Future<Output = ()> + Send + 'static {
        let probe = self.clone();
        async move {
            probe.inner.safe.fetch_add(n, SeqCst);
        }
    }

    /// Reads the racy counter, signals, waits at the gate, then writes the
    /// value read plus one: tasks that overlap lose updates.
    pub fn racy_increment(&self) -> impl Future<Output = ()> + Send + 'static {
        let probe = self.clone();
        async move {
            let read = probe.inner.racy.load(SeqCst);
            probe.signal();
            probe.pass_gate().await;
            probe.inner.racy.store(read + 1, SeqCst);
        }
    }

    /// Signals, then waits at the gate.
    pub fn block(&self) -> impl Future<Output = ()> + Send + 'static {
        let probe = self.clone();
        async move {
            probe.signal();
            probe.pass_gate().await;
        }
    }

    /// Fails with an error.
    // Not `async fn`: that would borrow the probe, and tasks must be 'static.
    #[allow(clippy::manual_async_fn)]
    pub fn fail(&self) -> impl Future<Output = Result<(), DeliberateFailure>> + Send + 'static {
        async { Err(DeliberateFailure) }
    }

    /// Panics.
    #[allow(clippy::manual_async_fn)]
    pub fn panic(&self) -> impl Future<Output = ()> + Send + 'static {
        async { panic!("deliberate panic") }
    }
}

/// A task reporting progress: half way with a message, then done.
pub async fn reporting(context: TaskContext) {
    context.report(0.5, "half way");
    context.progress(1.0);
}

/// A typed job: adds `n` to the probe's safe counter and notes it in
/// [`Probe::tallied`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Tally {
    /// What it adds.
    pub n: u64,
    /// Not an argument: the in-memory queue runs the value it was given.
    #[serde(skip)]
    probe: Option<Probe>,
}

impl Job for Tally {
    const NAME: &'static str = "tally";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        if let Some(probe) = &self.probe {
            probe.inner.safe.fetch_add(self.n, SeqCst);
            probe
                .inner
                .tallied
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(self.n);
        }
        Ok(())
    }
}

/// The query of the `/job` route: a [`Tally`] of `n`, and how to add it.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    /// The tally's `n`.
    pub n: u64,
    /// Its unique key, if any.
    pub key: Option<String>,
    /// Its priority, if not the default.
    pub priority: Option<i16>,
    /// Its delay in milliseconds, if any.
    pub delay_ms: Option<u64>,
}

/// What every app's `/job` route does: adds a [`Tally`] as `query` says.
/// The answer's body is `OK`, or `DUPLICATE` when a live task held the key
/// (the handle is then that task's).
///
/// # Errors
/// As [`TaskBuilder::add`](etiquette_core::TaskBuilder::add).
pub async fn add_job(
    decorum: &Decorum,
    probe: &Probe,
    query: JobQuery,
) -> Result<(TaskHandle, &'static str), AddTaskError> {
    let tally = Tally {
        n: query.n,
        probe: Some(probe.clone()),
    };
    let mut job = decorum.job(tally);
    if let Some(key) = query.key {
        job = job.unique_key(key);
    }
    if let Some(priority) = query.priority {
        job = job.priority(priority);
    }
    if let Some(delay) = query.delay_ms {
        job = job.delay(Duration::from_millis(delay));
    }
    let task = job.add().await?;
    let body = if task.was_duplicate() {
        "DUPLICATE"
    } else {
        "OK"
    };
    Ok((task, body))
}
