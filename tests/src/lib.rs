//! Shared pieces of the cross-framework behaviour suite: the tasks every
//! app hands off, and the [`Probe`] through which a test observes them.
//!
//! Each framework's app routes requests to these tasks in a few lines, so the
//! suite tests the adapters, not three copies of the task logic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use etiquette_core::backend::Backend;
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
    /// Its number in [`PROBES`], by which a [`Tally`] read back from a
    /// database finds it.
    id: u64,
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

/// Every live probe, by id: a typed job carries its probe's id, the only
/// part of it a durable backend can store.
static PROBES: Mutex<Option<HashMap<u64, Weak<ProbeInner>>>> = Mutex::new(None);
static NEXT_PROBE: AtomicU64 = AtomicU64::new(1);

impl Probe {
    /// A probe with its gate shut, and the receiver of its signals.
    pub fn new() -> (Self, Signals) {
        let (signals, receiver) = mpsc::unbounded_channel();
        let inner = ProbeInner {
            id: NEXT_PROBE.fetch_add(1, SeqCst),
            safe: AtomicU64::new(0),
            racy: AtomicU64::new(0),
            tallied: Mutex::default(),
            gate: Semaphore::new(0),
            signals,
        };
        let inner = Arc::new(inner);
        PROBES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_default()
            .insert(inner.id, Arc::downgrade(&inner));
        (Self { inner }, Signals(receiver))
    }

    /// The live probe with `id`.
    fn find(id: u64) -> Option<Self> {
        let probes = PROBES.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = probes.as_ref()?.get(&id)?.upgrade()?;
        Some(Self { inner })
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

/// A typed job: adds `n` to its probe's safe counter, notes it in
/// [`Probe::tallied`] and signals; with `hold`, then waits at the gate.
/// Only data: it finds its probe by id, so that it runs the same whether
/// the in-memory queue kept it or a database stored it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tally {
    /// What it adds.
    pub n: u64,
    /// Its probe's id.
    probe: u64,
    /// Whether it holds its slot until the gate opens.
    hold: bool,
}

impl Job for Tally {
    const NAME: &'static str = "tally";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        let Some(probe) = Probe::find(self.probe) else {
            return Ok(()); // its test is over
        };
        probe.inner.safe.fetch_add(self.n, SeqCst);
        probe
            .inner
            .tallied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.n);
        probe.signal();
        if self.hold {
            probe.pass_gate().await;
        }
        Ok(())
    }
}

/// The query of the `/job` route: a [`Tally`] of `n`, and how to add it.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    /// The tally's `n`.
    pub n: u64,
    /// Whether it holds its slot until the probe's gate opens.
    pub hold: Option<bool>,
    /// Its unique key, if any.
    pub key: Option<String>,
    /// Its priority, if not the default.
    pub priority: Option<i16>,
    /// Its delay in milliseconds, if any.
    pub delay_ms: Option<u64>,
}

/// What every app's `/job` route does, on any backend: adds a [`Tally`] as
/// `query` says. The answer's body is `OK`, or `DUPLICATE` when a live task
/// held the key (the handle is then that task's).
///
/// # Errors
/// As [`TaskBuilder::add`](etiquette_core::TaskBuilder::add).
pub async fn add_job<B: Backend>(
    decorum: &Decorum<B>,
    probe: &Probe,
    query: JobQuery,
) -> Result<(TaskHandle<B>, &'static str), AddTaskError> {
    let tally = Tally {
        n: query.n,
        probe: probe.inner.id,
        hold: query.hold.unwrap_or(false),
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
