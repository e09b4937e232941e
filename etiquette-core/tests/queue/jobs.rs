//! Typed jobs on the in-memory queue: run with their arguments and context,
//! retried, timed and failed like any task, and never serialised.

use std::time::Duration;

use etiquette_core::{Etiquette, Job, RetryPolicy, TaskContext, TaskHandle, TaskStatus};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::sync::mpsc;

use crate::support::{within, within_for};

/// What a job saw when it ran.
#[derive(Debug, PartialEq)]
struct Seen {
    to: String,
    task: u64,
    attempt: u32,
}

/// Fails its first `failures` attempts, then reports what it saw.
#[derive(Serialize, Deserialize)]
struct SendWelcome {
    to: String,
    failures: u32,
    #[serde(skip)]
    seen: Option<mpsc::UnboundedSender<Seen>>,
}

#[derive(Debug)]
struct MailServerBusy;

impl std::fmt::Display for MailServerBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mail server busy")
    }
}

impl std::error::Error for MailServerBusy {}

impl Job for SendWelcome {
    const NAME: &'static str = "send_welcome";
    type Error = MailServerBusy;

    async fn run(&self, context: TaskContext) -> Result<(), Self::Error> {
        if let Some(seen) = &self.seen {
            let _ = seen.send(Seen {
                to: self.to.clone(),
                task: context.id().get(),
                attempt: context.attempt(),
            });
        }
        if context.attempt() <= self.failures {
            return Err(MailServerBusy);
        }
        Ok(())
    }
}

fn welcome(to: &str, failures: u32) -> (SendWelcome, mpsc::UnboundedReceiver<Seen>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let job = SendWelcome {
        to: to.to_owned(),
        failures,
        seen: Some(seen),
    };
    (job, rx)
}

/// Adds `job`, retried up to `attempts` attempts a second apart.
async fn add_retried(etiquette: &Etiquette, job: SendWelcome, attempts: u32) -> TaskHandle {
    let policy = RetryPolicy::exponential(attempts, Duration::from_secs(1));
    let decorum = etiquette.decorum();
    decorum.job(job).retry(policy).add().await.unwrap()
}

/// A wait through a few backoffs or a time limit, on the paused clock.
async fn within_retries<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    within_for(Duration::from_secs(30), what, future).await
}

#[tokio::test(start_paused = true)]
async fn a_typed_job_runs_once_per_attempt_with_its_arguments_and_context() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let (job, mut seen) = welcome("ada@example.com", 2);
    let task = add_retried(&etiquette, job, 3).await;
    within_retries("the job's outcome", task.outcome())
        .await
        .unwrap();
    let mut attempts = Vec::new();
    while let Ok(one) = seen.try_recv() {
        attempts.push(one);
    }
    let expected: Vec<_> = (1..=3)
        .map(|attempt| Seen {
            to: "ada@example.com".to_owned(),
            task: task.id().get(),
            attempt,
        })
        .collect();
    assert_eq!(attempts, expected);
    assert!(matches!(
        task.status_now(),
        TaskStatus::Succeeded { attempts: 3 }
    ));
    let report = within("the release", etiquette.release()).await;
    assert_eq!((report.completed, report.retried), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_typed_job_failing_for_good_reports_its_own_error() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let (job, _seen) = welcome("bob@example.com", u32::MAX);
    let task = add_retried(&etiquette, job, 2).await;
    let error = within_retries("the job's outcome", task.outcome())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "mail server busy");
    assert!(matches!(
        task.status_now(),
        TaskStatus::Failed { attempts: 2, .. }
    ));
}

/// A job that never finishes on its own.
#[derive(Serialize, Deserialize)]
struct Endless;

impl Job for Endless {
    const NAME: &'static str = "endless";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_typed_job_obeys_its_time_limit() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let task = etiquette
        .decorum()
        .job(Endless)
        .retry(RetryPolicy::never())
        .timeout(Duration::from_secs(5))
        .add()
        .await
        .unwrap();
    within_retries("the job's time-out", task.outcome())
        .await
        .unwrap_err();
    assert!(matches!(
        task.status_now(),
        TaskStatus::TimedOut { attempts: 1, limit } if limit == Duration::from_secs(5)
    ));
}

/// Serialising or deserialising it panics: the in-memory queue must do
/// neither.
struct Unserialisable;

impl Serialize for Unserialisable {
    fn serialize<S: Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        panic!("the in-memory queue serialised a job");
    }
}

impl<'de> Deserialize<'de> for Unserialisable {
    fn deserialize<D: Deserializer<'de>>(_deserializer: D) -> Result<Self, D::Error> {
        panic!("the in-memory queue deserialised a job");
    }
}

impl Job for Unserialisable {
    const NAME: &'static str = "unserialisable";
    type Error = std::convert::Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[tokio::test]
async fn typed_jobs_run_in_memory_without_being_serialised() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let task = etiquette.decorum().job(Unserialisable).add().await.unwrap();
    within("the job's outcome", task.outcome()).await.unwrap();
    let report = within("the release", etiquette.release()).await;
    assert_eq!((report.completed, report.panicked), (1, 0));
}

/// Panics when run.
#[derive(Serialize, Deserialize)]
struct Broken;

impl Job for Broken {
    const NAME: &'static str = "broken";
    type Error = std::convert::Infallible;

    #[allow(clippy::unused_async)]
    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        panic!("the template is missing");
    }
}

#[tokio::test]
async fn a_typed_job_that_panics_fails_as_panicked_and_the_queue_goes_on() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let broken = decorum.job(Broken).add().await.unwrap();
    let (job, _seen) = welcome("eve@example.com", 0);
    let after = decorum.job(job).add().await.unwrap();
    let error = within("the broken job's outcome", broken.outcome())
        .await
        .unwrap_err();
    assert!(error.is_panic());
    assert!(
        error.to_string().contains("the template is missing"),
        "{error}"
    );
    within("the next job's outcome", after.outcome())
        .await
        .unwrap();
}
