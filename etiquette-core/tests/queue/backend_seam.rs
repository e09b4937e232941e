//! The backend seam (`etiquette_core::backend`) as a backend author sees
//! it, on `Ledger`: a minimal backend of the test's own, not a mock of a
//! database, which refuses what handlers add, feeds the engine only through
//! `Engine::offer` (as a durable backend feeds it the jobs it claims),
//! stores the retries it is told of, and records every transition. Shown:
//! an offered job runs with its own attempt number, under the queue's
//! bound, with its progress and events; a retry the backend stores leaves
//! the process, counted as handed back; release refuses later offers and
//! tells the backend once; a release deadline has it cancel what runs.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use etiquette_core::backend::{
    Backend, Backoff, Engine, JobOptions, LocalTask, Offer, TaskRef, WeakEngine,
};
use etiquette_core::{
    AddTaskError, BackendError, BoxError, BuildError, Etiquette, EventKind, Job, ReleaseReport,
    RetryPolicy, Subscription, TaskContext, TaskError, TaskHandle, TaskId, TaskStatus,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

use crate::support::{Gate, InFlight, drain, receive_n, signals, within, yield_now};

/// What the engine told the ledger of a task, in the order it told it.
#[derive(Debug, Clone, PartialEq)]
enum Told {
    /// The attempt.
    Started(u32),
    Progress(Option<f32>, Option<String>),
    /// The failed attempt, the delay before the next, the error.
    Retrying(u32, Duration, String),
    /// The status's name, and its attempts.
    Settled(&'static str, u32),
}

/// The test's backend. A cheap handle on its books: the queue owns the
/// backend it is built on, so the test keeps a clone to read them.
#[derive(Clone, Default)]
struct Ledger(Arc<Books>);

#[derive(Default)]
struct Books {
    /// Set in `Backend::start`; weak, so that the backend does not keep
    /// its own queue alive.
    engine: OnceLock<WeakEngine<Ledger>>,
    /// Each task's transitions, by task id.
    told: Mutex<Vec<(u64, Told)>>,
    /// Times it heard that release began, and that its deadline passed.
    closing: AtomicU32,
    cancel_unfinished: AtomicU32,
    /// Retries stored, for any process to claim when due: the task, its
    /// next attempt, and the delay before it.
    stored: Mutex<Vec<(u64, u32, Duration)>>,
    /// Every job it claimed, to cancel at a release deadline.
    claimed: Mutex<Vec<LocalTask>>,
}

impl Ledger {
    fn engine(&self) -> Engine<Self> {
        let weak = self.0.engine.get().expect("Backend::start was called");
        weak.upgrade().expect("the queue is alive")
    }

    /// Hands the engine a job, as a durable backend does with one it claimed.
    async fn claim(&self, offer: Offer) -> Result<LocalTask, AddTaskError> {
        let task = self.engine().offer(offer).await?;
        self.0.claimed.lock().unwrap().push(task.clone());
        Ok(task)
    }

    fn tell(&self, task: TaskRef<'_>, told: Told) {
        self.0.told.lock().unwrap().push((task.id().get(), told));
    }

    fn told_about(&self, task: u64) -> Vec<Told> {
        let told = self.0.told.lock().unwrap();
        let about = told.iter().filter(|(id, _)| *id == task);
        about.map(|(_, told)| told.clone()).collect()
    }
}

impl Backend for Ledger {
    type Ticket = ();
    type Work = &'static str;

    fn work<J: Job>(_job: J) -> &'static str {
        J::NAME
    }

    fn start(engine: &Engine<Self>) -> Result<(), BuildError> {
        let weak = engine.downgrade();
        assert!(engine.backend().0.engine.set(weak).is_ok(), "started once");
        Ok(())
    }

    fn closing(&self) {
        self.0.closing.fetch_add(1, SeqCst);
    }

    async fn add(
        _: &Engine<Self>,
        _: Option<&'static str>,
        _: &'static str,
        _: JobOptions,
    ) -> Result<TaskHandle<Self>, AddTaskError> {
        let why = "the ledger takes jobs by offer only";
        Err(AddTaskError::Unstorable(BackendError::msg(why)))
    }

    async fn find(_: &Engine<Self>, _: TaskId) -> Result<Option<TaskHandle<Self>>, BackendError> {
        Ok(None)
    }

    async fn status(_: &Engine<Self>, _: TaskId, (): &()) -> Result<TaskStatus, BackendError> {
        Err(BackendError::msg("the ledger hands out no handles"))
    }

    async fn cancel(_: &Engine<Self>, _: TaskId, (): &()) -> Result<bool, BackendError> {
        Err(BackendError::msg("the ledger hands out no handles"))
    }

    async fn outcome(_: Engine<Self>, _: TaskId, (): ()) -> Result<(), TaskError> {
        Err(TaskError::from_message("the ledger hands out no handles"))
    }

    async fn subscribe_task(
        _: &Engine<Self>,
        _: TaskId,
        _: Option<u64>,
    ) -> Result<Option<Subscription>, BackendError> {
        Ok(None)
    }

    fn started(&self, task: TaskRef<'_>, attempt: u32) {
        self.tell(task, Told::Started(attempt));
    }

    fn progress(&self, task: TaskRef<'_>, fraction: Option<f32>, message: Option<&str>) {
        self.tell(task, Told::Progress(fraction, message.map(str::to_owned)));
    }

    /// Stores the retry: the task leaves this process.
    fn retrying(&self, task: TaskRef<'_>, n: u32, delay: Duration, e: &TaskError) -> Backoff {
        let attempt = n;
        self.tell(task, Told::Retrying(attempt, delay, e.to_string()));
        let retry = (task.id().get(), attempt + 1, delay);
        self.0.stored.lock().unwrap().push(retry);
        Backoff::Stored
    }

    fn settled(&self, task: TaskRef<'_>, status: &TaskStatus) {
        self.tell(task, Told::Settled(status.name(), status.attempts()));
    }

    /// Cancels the attempts of the jobs it claimed that still run here.
    fn cancel_unfinished(&self) {
        self.0.cancel_unfinished.fetch_add(1, SeqCst);
        let claimed = self.0.claimed.lock().unwrap().clone();
        let unfinished = claimed.iter().filter(|task| !task.is_settled());
        unfinished.for_each(LocalTask::cancel_attempt);
    }
}

/// A queue running at most `max` tasks at once on a new ledger.
fn queue(max: usize) -> (Etiquette<Ledger>, Ledger) {
    let ledger = Ledger::default();
    let builder = Etiquette::builder().max_concurrent_tasks(max);
    let etiquette = builder.event_buffer(64).build_on(ledger.clone());
    (etiquette.expect("the test's settings build"), ledger)
}

/// An offer of task `id`, each attempt running `body`.
fn offer<M, F>(id: u64, body: M) -> Offer
where
    M: FnMut(TaskContext) -> F + Send + 'static,
    F: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Offer::new(TaskId::from(id), "ledger_job", body)
}

/// A job that signals its start through `started`, then waits at `gate`,
/// counted in `in_flight` meanwhile.
fn held(id: u64, started: &UnboundedSender<usize>, gate: &Gate, in_flight: &InFlight) -> Offer {
    let (started, gate, in_flight) = (started.clone(), gate.clone(), in_flight.clone());
    offer(id, move |_| {
        let (started, gate, running) = (started.clone(), gate.clone(), in_flight.enter());
        async move {
            started.send(usize::try_from(id).unwrap()).unwrap();
            gate.pass().await;
            drop(running);
            Ok(())
        }
    })
}

/// A job counting its attempts in `runs`, each failing with `error`, or
/// succeeding without one.
fn counted(id: u64, runs: &Arc<AtomicU32>, error: Option<&'static str>) -> Offer {
    let runs = Arc::clone(runs);
    offer(id, move |_| {
        runs.fetch_add(1, SeqCst);
        async move { error.map_or(Ok(()), |error| Err(error.into())) }
    })
}

/// Releases the queue within the bound, and checks its accounting.
async fn release(etiquette: &Etiquette<Ledger>) -> ReleaseReport {
    let report = within("the release of the queue", etiquette.release()).await;
    let settled = report.completed + report.failed + report.cancelled + report.handed_back;
    assert_eq!(settled, report.accepted, "{report:?}");
    report
}

#[tokio::test]
async fn an_offered_job_runs_its_attempt_and_the_backend_hears_of_it() {
    let (etiquette, ledger) = queue(2);
    let seen = Arc::new(AtomicU32::new(0));
    let attempt = Arc::clone(&seen);
    let job = offer(7, move |context| {
        attempt.store(context.attempt(), SeqCst);
        async move {
            context.report(0.5, "half way");
            context.progress(1.0);
            Ok(())
        }
    });
    let task = ledger.claim(job.attempt(3)).await.unwrap();
    let outcome = within("the outcome of task 7", task.outcome()).await;
    assert!(outcome.is_ok() && task.is_settled(), "{outcome:?}");
    assert_eq!(seen.load(SeqCst), 3, "the attempt it was offered with");
    let told = [
        Told::Started(3),
        Told::Progress(Some(0.5), Some("half way".to_owned())),
        Told::Progress(Some(1.0), None),
        Told::Settled("succeeded", 3),
    ];
    assert_eq!(ledger.told_about(7), told);
    let stats = etiquette.stats();
    assert_eq!((stats.accepted, stats.completed), (1, 1), "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_the_backend_stores_leaves_the_process() {
    let (etiquette, ledger) = queue(2);
    let runs = Arc::new(AtomicU32::new(0));
    let job = counted(11, &runs, Some("mail server busy"));
    let backoff = Duration::from_secs(5);
    let job = job.retry(RetryPolicy::exponential(3, backoff));
    let task = ledger.claim(job).await.unwrap();
    // Long past the backoff, on the paused clock: had the engine kept the
    // retry, attempt 2 would have run by now.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(runs.load(SeqCst), 1, "the job ran once in this process");
    // It left waiting to retry, and reads so here.
    let status = task.status();
    assert!(
        matches!(&status, TaskStatus::Retrying { attempt: 1, backoff: b, .. } if *b == backoff),
        "{status:?}"
    );
    let retrying = Told::Retrying(1, backoff, "mail server busy".to_owned());
    assert_eq!(ledger.told_about(11), [Told::Started(1), retrying]);
    let stored = ledger.0.stored.lock().unwrap().clone();
    assert_eq!(stored, [(11, 2, backoff)], "attempt 2 is the store's");
    assert_eq!(etiquette.stats().handed_back, 1);
    let report = release(&etiquette).await;
    let counts = (report.accepted, report.handed_back, report.retried);
    assert_eq!(counts, (1, 1, 1), "{report:?}");
    assert_eq!(runs.load(SeqCst), 1);
}

/// Eight offered jobs at `max_concurrent_tasks(2)`: two run at once, and
/// one its backend cancels while it waits in line never starts.
#[tokio::test]
async fn offered_jobs_run_within_the_bound_and_can_be_cancelled_in_line() {
    let (etiquette, ledger) = queue(2);
    let (gate, in_flight) = (Gate::closed(), InFlight::default());
    let (started, mut starts) = signals();
    let mut claimed = Vec::new();
    for id in 100..108 {
        claimed.push(ledger.claim(held(id, &started, &gate, &in_flight)).await);
    }
    receive_n(&mut starts, 2, "the start of two offered jobs").await;
    tokio::time::sleep(Duration::from_millis(10)).await; // the others' chance
    assert_eq!(in_flight.now(), 2, "two run while the others wait");
    assert!(starts.try_recv().is_err(), "a third started");
    assert!(ledger.engine().cancel(claimed[7].as_ref().unwrap()));
    gate.open();
    receive_n(&mut starts, 5, "the start of the other five").await;
    let report = release(&etiquette).await;
    assert_eq!((report.completed, report.cancelled), (7, 1), "{report:?}");
    assert_eq!(in_flight.max(), 2, "never more than two at once");
    let succeeded = [Told::Settled("succeeded", 1)];
    assert!((100..107).all(|id| ledger.told_about(id).ends_with(&succeeded)));
    assert_eq!(ledger.told_about(107), [Told::Settled("cancelled", 0)]);
}

#[tokio::test]
async fn offers_are_refused_once_release_began() {
    let (etiquette, ledger) = queue(2);
    let gate = Gate::closed();
    let (started, mut starts) = signals();
    let job = held(20, &started, &gate, &InFlight::default());
    ledger.claim(job).await.unwrap();
    receive_n(&mut starts, 1, "the start of the held job").await;
    let releasing = tokio::spawn({
        let etiquette = etiquette.clone();
        async move { etiquette.release().await }
    });
    within("the release to begin", async {
        while !ledger.engine().is_released() {
            yield_now().await;
        }
    })
    .await;
    assert_eq!(ledger.0.closing.load(SeqCst), 1, "closing is told");
    let runs = Arc::new(AtomicU32::new(0));
    let refused = ledger.claim(counted(21, &runs, None)).await;
    assert!(matches!(refused, Err(AddTaskError::Released)));
    gate.open();
    let report = within("the release of the queue", releasing).await.unwrap();
    assert_eq!((report.accepted, report.completed), (1, 1), "{report:?}");
    assert_eq!(runs.load(SeqCst), 0, "the refused job never runs");
    assert_eq!(ledger.told_about(21), []);
    // Released again: harmless, and the backend heard of it once.
    release(&etiquette).await;
    assert_eq!(ledger.0.closing.load(SeqCst), 1, "closing is told once");
}

#[tokio::test(start_paused = true)]
async fn a_release_deadline_has_the_backend_cancel_what_runs() {
    let (etiquette, ledger) = queue(2);
    let (started, mut starts) = signals();
    // Held at a gate that never opens.
    let job = held(30, &started, &Gate::closed(), &InFlight::default());
    let task = ledger.claim(job).await.unwrap();
    receive_n(&mut starts, 1, "the start of the long job").await;
    let deadline = etiquette.release_timeout(Duration::from_secs(1));
    let report = within("the release past its deadline", deadline).await;
    assert_eq!((report.accepted, report.cancelled), (1, 1), "{report:?}");
    assert_eq!(ledger.0.cancel_unfinished.load(SeqCst), 1);
    let told = ledger.told_about(30);
    assert_eq!(told, [Told::Started(1), Told::Settled("cancelled", 0)]);
    assert!(ledger.engine().deadline_passed());
    let outcome = within("the outcome of the cancelled job", task.outcome()).await;
    assert!(outcome.unwrap_err().is_cancelled());
}

/// The task and kind of every event of `subscription`, until it ends.
async fn kinds(what: &str, subscription: Subscription) -> Vec<(TaskId, EventKind)> {
    let events = drain(what, subscription)
        .await
        .into_iter()
        .map(|event| event.expect("no lag"));
    events.map(|event| (event.task, event.kind)).collect()
}

#[tokio::test]
async fn the_engine_publishes_the_events_of_offered_jobs() {
    let (etiquette, ledger) = queue(2);
    let every_task = etiquette.decorum().subscribe(None);
    let task = ledger.claim(offer(40, |_| async { Ok(()) })).await.unwrap();
    let this_task = ledger.engine().subscribe_local(&task, None);
    // An offered job is not announced as queued: its events begin with its
    // attempt, which names its kind.
    let id = TaskId::from(40);
    let job = Some("ledger_job");
    let expected = [
        (id, EventKind::Started { attempt: 1, job }),
        (id, EventKind::Succeeded { attempts: 1 }),
    ];
    // Ends after the final event, so drained within the bound.
    assert_eq!(kinds("the events of task 40", this_task).await, expected);
    release(&etiquette).await; // which ends the stream of every task's events
    let all = kinds("the events of every task", every_task).await;
    assert_eq!(all, expected);
}

/// A typed job a handler adds: on this backend it never reaches the engine.
#[derive(Serialize, Deserialize)]
struct Welcome;

impl Job for Welcome {
    const NAME: &'static str = "welcome";
    type Error = BoxError;
    async fn run(&self, _context: TaskContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn what_handlers_add_goes_to_the_backend_which_may_refuse_it() {
    let (etiquette, ledger) = queue(2);
    let added = etiquette.decorum().job(Welcome).add().await;
    assert!(matches!(added, Err(AddTaskError::Unstorable(_))));
    assert_eq!(etiquette.stats().accepted, 0);
    assert!(ledger.0.told.lock().unwrap().is_empty());
}
