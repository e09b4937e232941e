//! A task being prepared: its retry policy, time limit, start time,
//! priority and unique key, then added.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::backend::options::Plan;
use crate::backend::{Backend, Engine, JobOptions, Memory, Start};
use crate::engine::intake::try_place;
use crate::engine::lanes::DEFAULT_PRIORITY;
use crate::memory::duplicate_of;
use crate::memory::enqueue::enqueue_retryable;
use crate::{AddTaskError, Decorum, RetryPolicy, TaskHandle};

/// A retryable task or typed job being prepared; see [`Decorum::task`] and
/// [`Decorum::job`].
#[must_use = "a task is only queued by `add` or `try_add`"]
pub struct TaskBuilder<'a, B: Backend = Memory> {
    decorum: &'a Decorum<B>,
    work: B::Work,
    retry: Option<RetryPolicy>,
    plan: Plan,
    /// A typed job's name.
    kind: Option<&'static str>,
}

impl<'a, B: Backend> TaskBuilder<'a, B> {
    pub(crate) fn new(decorum: &'a Decorum<B>, work: B::Work, kind: Option<&'static str>) -> Self {
        Self {
            plan: Plan::now(decorum.inner.shared.config.timeout),
            decorum,
            work,
            retry: None,
            kind,
        }
    }

    /// The retry policy for this task, instead of the queue's default
    /// ([`Builder::retry_policy`](crate::Builder::retry_policy)).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A time limit for each attempt, instead of the queue's default
    /// ([`Builder::task_timeout`](crate::Builder::task_timeout)).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.plan.timeout = Some(limit);
        self
    }

    /// No time limit for this task, whatever the queue's default.
    pub fn no_timeout(mut self) -> Self {
        self.plan.timeout = None;
        self
    }

    /// Starts the task no sooner than `delay` after it is added. Until then
    /// its status is [`Scheduled`](crate::TaskStatus::Scheduled) and it
    /// holds a place in the queue but no slot; then it waits in line for a
    /// slot like any task. The delay counts from when the task is accepted
    /// (after any wait for a place). A release waits for it: cancel it, or
    /// release with a deadline, which cancels it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use etiquette_core::{Etiquette, TaskStatus};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let etiquette = Etiquette::initiate(4)?;
    /// let reminder = etiquette
    ///     .decorum()
    ///     .task(|| async { println!("your trial ends tomorrow") })
    ///     .delay(Duration::from_secs(3600))
    ///     .add()
    ///     .await?;
    /// assert!(matches!(reminder.status().await?, TaskStatus::Scheduled { .. }));
    /// reminder.outcome().await?; // an hour later, on tokio's clock
    /// # Ok(()) }
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.plan.extras().start = Some(Start::After(delay));
        self
    }

    /// Starts the task no sooner than `at` (wall-clock time); at once if
    /// `at` has passed. See [`delay`](Self::delay).
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.plan.extras().start = Some(Start::At(at));
        self
    }

    /// Where the task stands in line: tasks with a lower number start
    /// first, and tasks of one priority in the order they joined the line.
    /// The default is 0; use negative numbers for urgent work and positive
    /// ones for work that can wait (as graphile-worker and Oban do).
    pub fn priority(mut self, priority: i16) -> Self {
        self.plan.priority = priority;
        self
    }

    /// Makes the task unique by `key` while it lives: as long as a task
    /// added with this key has not finished (queued, scheduled, running or
    /// waiting to retry), adding another with the key adds nothing and
    /// returns the live task's handle, whose
    /// [`was_duplicate`](TaskHandle::was_duplicate) is `true`. Once it
    /// finished, the key is free again. Keys are the queue's: put the job's
    /// name in the key to keep kinds apart.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.plan.extras().unique_key = Some(key.into().into_boxed_str());
        self
    }

    /// The task as its backend's [`add`](crate::backend::Backend::add)
    /// takes it: the engine, the job's name (`None` for a closure task),
    /// its work, and its options with the queue's defaults filled in. For
    /// backends adding jobs a way of their own (a durable backend's add
    /// within the application's transaction).
    pub fn into_parts(self) -> (Engine<B>, Option<&'static str>, B::Work, JobOptions) {
        self.options()
    }

    fn options(self) -> (Engine<B>, Option<&'static str>, B::Work, JobOptions) {
        let shared = &self.decorum.inner.shared;
        let retry = self.retry.unwrap_or_else(|| shared.config.retry.clone());
        let options = JobOptions {
            plan: self.plan,
            retry,
        };
        (
            Engine::new(Arc::clone(shared)),
            self.kind,
            self.work,
            options,
        )
    }

    /// Adds the task, waiting for a place as [`Decorum::add_task`] does on
    /// the in-memory queue; a durable backend stores it.
    ///
    /// # Errors
    /// As [`Decorum::add_task`]; on a durable backend also
    /// [`AddTaskError::Unavailable`] and [`AddTaskError::Unstorable`].
    ///
    /// # Cancel safety
    /// Dropping the future before it resolves drops the task: it was not
    /// accepted and will not run (on a durable backend, unless the store
    /// had already committed it).
    pub async fn add(self) -> Result<TaskHandle<B>, AddTaskError> {
        let (engine, kind, work, options) = self.options();
        B::add(&engine, kind, work, options).await
    }
}

impl TaskBuilder<'_> {
    /// Adds the task if there is room now, as [`Decorum::try_add_task`]
    /// does (in-memory queue).
    ///
    /// # Errors
    /// As [`Decorum::try_add_task`].
    pub fn try_add(self) -> Result<TaskHandle, AddTaskError> {
        let (engine, kind, make, options) = self.options();
        let shared = &engine.shared;
        if let Some(live) = duplicate_of(shared, &options) {
            return Ok(live);
        }
        try_place(shared)?;
        let JobOptions { plan, retry } = options;
        enqueue_retryable(shared, (make, retry, kind), plan)
    }
}

impl<B: Backend> fmt::Debug for TaskBuilder<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskBuilder")
            .field("retry", &self.retry)
            .field("timeout", &self.plan.timeout)
            .field("start", &self.plan.start_intent())
            .field("priority", &self.plan.priority)
            .field("unique_key", &self.plan.unique_key())
            .finish_non_exhaustive()
    }
}

const _: () = assert!(DEFAULT_PRIORITY == 0, "the docs of `priority` say 0");
