//! The line of accepted jobs waiting for a worker.
//!
//! A plain channel wakes one more idle worker for every job sent, so a burst
//! of short tasks cost a wake-up each, like a spawn. Here at most one idle
//! worker is being woken at any time: the woken worker, finding more work
//! behind the job it takes, wakes the next. A steady stream of short tasks
//! is thus drained by the workers already awake, with no wake-up per task,
//! and an idle queue of 1024 workers costs the same per task as one of 16.

use concurrent_queue::{ConcurrentQueue, PopError};
use event_listener::Event;

use crate::job::Job;

pub(crate) struct Backlog {
    jobs: ConcurrentQueue<Job>,
    /// Idle workers listen here.
    ready: Event,
}

impl Backlog {
    pub(crate) fn new() -> Self {
        Self {
            jobs: ConcurrentQueue::unbounded(),
            ready: Event::new(),
        }
    }

    /// Queues a job, or hands it back once the backlog is closed.
    pub(crate) fn push(&self, job: Job) -> Result<(), Job> {
        self.jobs
            .push(job)
            .map_err(concurrent_queue::PushError::into_inner)?;
        // `notify(1)` wakes nobody if a worker is already being woken.
        self.ready.notify(1);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Refuses further jobs; workers stop once the backlog is empty.
    pub(crate) fn close(&self) {
        self.jobs.close();
        self.ready.notify(usize::MAX);
    }

    /// Takes a job without waiting, whether or not the backlog is closed.
    pub(crate) fn try_pop(&self) -> Option<Job> {
        self.jobs.pop().ok()
    }

    /// The next job, waiting for one; `None` once closed and empty.
    pub(crate) async fn pop(&self) -> Option<Job> {
        loop {
            match self.take() {
                Ok(job) => return Some(job),
                Err(PopError::Closed) => return None,
                Err(PopError::Empty) => {}
            }
            // Listen, then look again: a push in between would be missed.
            // The listener lives on this future's stack: parking allocates
            // nothing.
            event_listener::listener!(self.ready => listener);
            match self.take() {
                Ok(job) => return Some(job),
                Err(PopError::Closed) => return None,
                Err(PopError::Empty) => listener.await,
            }
        }
    }

    fn take(&self) -> Result<Job, PopError> {
        let job = self.jobs.pop()?;
        if !self.jobs.is_empty() {
            // More work: pass the wake-up on.
            self.ready.notify(1);
        }
        Ok(job)
    }
}
