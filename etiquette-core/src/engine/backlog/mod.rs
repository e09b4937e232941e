//! The line: accepted jobs waiting for a worker, the queue places they
//! hold, and the idle workers waiting for them.
//!
//! One short lock orders everything that enters or leaves the line, so that
//! each of these facts is decided in one place, without races:
//!
//! * **Ids follow acceptance order.** A task's id is drawn as it joins the
//!   line, so at limit 1 tasks of one priority, added to start at once,
//!   start in id order.
//! * **Places.** A task holds one place while it waits, queued, scheduled
//!   or waiting to retry, and none while it runs. It gives the place back when a worker
//!   claims it or when it is settled while waiting (a cancelled queued task
//!   frees its place at once). A task returning from a failed attempt takes
//!   a place back; if none is free it takes one on credit (`debt`), repaid
//!   by the next place given back, so intake stays closed until the line is
//!   under capacity again. Hence, at any time,
//!   `queued + scheduled + retrying ≤ queue_capacity + max_concurrent_tasks`,
//!   and a new task is accepted only while that sum is below
//!   `queue_capacity`.
//! * **Workers start on demand.** A job joining a line with no idle worker
//!   starts one, up to `max_concurrent_tasks`; at most one idle worker is
//!   being woken at a time, and a worker that finds more work behind the job
//!   it claims summons the next. A worker finding the line empty parks,
//!   unless enough workers are parked already: then it retires. Memory
//!   follows use, not the configured maxima.
//! * **Cancelled jobs** stay in the line until a worker skips them, or until
//!   they outnumber the live ones and the line is compacted.
//! * **Order.** Jobs leave by priority, then in the order they joined (see
//!   `lanes`). A task added with a delay waits outside the line, holding its
//!   place, until its timer puts it in, as a retry does after its backoff.

use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Semaphore;

use crate::TaskId;
use crate::api::stats::{Counters, Waiting};
use crate::engine::attempt::Accepted;
use crate::engine::cell::{BACKOFF, TaskCell};
use crate::engine::lanes::Lanes;
use crate::engine::worker::Parker;

mod places;
mod pool;

use pool::PARKED_WORKERS_KEPT;
pub(crate) use pool::Summon;

pub(crate) struct Backlog {
    line: Mutex<Line>,
    /// One permit per free place. Taken by adders before they join the line
    /// (waiting for one, first come first served, if they choose to);
    /// closed on release, which wakes waiting adders.
    pub(crate) places: Semaphore,
    /// Live jobs in the line, for lock-free snapshots.
    queued: AtomicUsize,
    /// Tasks waiting out a backoff, for lock-free snapshots.
    retrying: AtomicUsize,
    /// Tasks waiting for the time they were added to run at.
    scheduled: AtomicUsize,
    max_workers: usize,
}

struct Line {
    jobs: Lanes,
    /// Jobs in `jobs` settled (cancelled) while waiting.
    dead: usize,
    /// Places taken on credit by tasks returning from a failed attempt.
    debt: usize,
    /// Ids drawn so far: the last one issued.
    last_id: u64,
    /// Parked workers, the most recently parked last.
    parked: Vec<Arc<Parker>>,
    /// Workers started and not yet stopped.
    workers: usize,
    /// Whether a worker has been woken or started and has not yet looked
    /// at the line: it will summon the next, so nobody else needs to.
    summoning: bool,
    /// No new job joins once closed; workers stop when it is empty.
    closed: bool,
    /// Not even a retry rejoins once sealed: the line was drained for good
    /// (a release deadline, or the executor lost).
    sealed: bool,
}

/// What a worker does next.
pub(crate) enum Claim {
    /// Run this attempt of this job.
    Run(Accepted, u32),
    /// Drop this job, cancelled while it waited (outside the lock: dropping
    /// it runs user code).
    Discard(Accepted),
    /// Nothing to do: wait on your parker.
    Park,
    /// Stop: the line is closed and empty, or enough workers are parked.
    Stop,
}

impl Line {
    /// The id of a task joining now; `None` once the line is closed.
    #[inline]
    fn next_id(&mut self) -> Option<TaskId> {
        if self.closed {
            return None;
        }
        self.last_id += 1;
        Some(TaskId::new(self.last_id))
    }
}

fn lock(line: &Mutex<Line>) -> MutexGuard<'_, Line> {
    // Every update under this lock leaves the line consistent before any
    // user code can run (dropping jobs happens outside it).
    line.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backlog {
    pub(crate) fn new(capacity: usize, max_workers: usize) -> Self {
        Self {
            line: Mutex::new(Line {
                jobs: Lanes::default(),
                dead: 0,
                debt: 0,
                last_id: 0,
                parked: Vec::new(),
                workers: 0,
                summoning: false,
                closed: false,
                sealed: false,
            }),
            places: Semaphore::new(capacity),
            queued: AtomicUsize::new(0),
            retrying: AtomicUsize::new(0),
            scheduled: AtomicUsize::new(0),
            max_workers,
        }
    }

    /// Live jobs waiting in line.
    pub(crate) fn len(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Tasks waiting, by where they wait.
    pub(crate) fn waiting(&self) -> Waiting {
        Waiting {
            queued: self.queued.load(Relaxed),
            scheduled: self.scheduled.load(Relaxed),
            retrying: self.retrying.load(Relaxed),
        }
    }

    /// Puts a new job in line under the next id, made by `make`; the caller
    /// holds a place for it. Hands `make` back, unused, once the line is
    /// closed.
    #[inline(always)]
    pub(crate) fn join<F>(&self, make: F) -> Result<(Arc<TaskCell>, Summon), F>
    where
        F: FnOnce(TaskId) -> Accepted,
    {
        let mut line = lock(&self.line);
        let Some(id) = line.next_id() else {
            return Err(make);
        };
        let job = make(id);
        let cell = Arc::clone(&job.cell);
        line.jobs.push(job);
        self.publish_len(&line);
        Ok((cell, self.summon(&mut line)))
    }

    /// Puts a job a backend offered in line, under the id it brought; the
    /// caller holds a place for it. Hands it back once the line is closed.
    pub(crate) fn offer(&self, job: Accepted) -> Result<Summon, Accepted> {
        let mut line = lock(&self.line);
        if line.closed {
            return Err(job);
        }
        line.jobs.push(job);
        self.publish_len(&line);
        Ok(self.summon(&mut line))
    }

    /// Puts in line the next life of a task retried by hand, made by
    /// `make` under the task's own id; the caller holds a place for it.
    /// Hands `make` back, unused, once the line is closed.
    pub(crate) fn join_again<F>(&self, make: F) -> Result<Summon, F>
    where
        F: FnOnce() -> Accepted,
    {
        let mut line = lock(&self.line);
        if line.closed {
            return Err(make);
        }
        let job = make();
        line.jobs.push(job);
        self.publish_len(&line);
        Ok(self.summon(&mut line))
    }

    /// Accepts a new job made by `make` in the `SCHEDULED` phase, under the
    /// next id, but hands it back for the caller to wait out its delay, then
    /// [`rejoin`](Self::rejoin).
    #[inline(always)]
    pub(crate) fn join_later<F>(&self, make: F) -> Result<Accepted, F>
    where
        F: FnOnce(TaskId) -> Accepted,
    {
        // Made outside the lock: it does not join the line, so nothing
        // orders it against the jobs in line but its id.
        let Some(id) = lock(&self.line).next_id() else {
            return Err(make);
        };
        // Counted once made: making it may panic (its span calls the
        // tracing subscriber), and then nothing was accepted.
        let job = make(id);
        self.scheduled.fetch_add(1, Relaxed);
        Ok(job)
    }

    /// Puts a job in line after its backoff or delay; hands it back, still
    /// waiting, once the line is sealed or the task was cancelled. A closed
    /// line still takes it: a release runs every accepted task, retries and
    /// scheduled ones included, and a worker is started for it if all
    /// stopped.
    pub(crate) fn rejoin(&self, mut job: Accepted) -> Result<Summon, Accepted> {
        let mut line = lock(&self.line);
        if line.sealed {
            return Err(job);
        }
        match job.cell.leave_waiting() {
            Some(BACKOFF) => self.retrying.fetch_sub(1, Relaxed),
            Some(_) => {
                // Its wait in line starts now, not when it was added.
                job.due_now();
                self.scheduled.fetch_sub(1, Relaxed)
            }
            None => return Err(job),
        };
        line.jobs.push(job);
        self.publish_len(&line);
        Ok(self.summon(&mut line))
    }

    /// The worker with `parker` looks for work; `woken` when it was just
    /// woken or started. Counts a claimed job as running.
    pub(crate) fn claim(
        &self,
        parker: &Arc<Parker>,
        woken: bool,
        counters: &Counters,
    ) -> (Claim, Summon) {
        let mut line = lock(&self.line);
        if woken {
            line.summoning = false;
        }
        let Some(job) = line.jobs.pop() else {
            if line.closed || line.parked.len() >= PARKED_WORKERS_KEPT {
                line.workers -= 1;
                return (Claim::Stop, Summon::Nobody);
            }
            parker.reset();
            line.parked.push(Arc::clone(parker));
            return (Claim::Park, Summon::Nobody);
        };
        if job.cell.is_settled() {
            line.dead -= 1;
            return (Claim::Discard(job), Summon::Nobody);
        }
        self.publish_len(&line);
        // Cannot fail: only the line settles a queued task, under this lock,
        // and settled jobs were skipped above.
        let Some(attempt) = job.cell.begin_attempt() else {
            return (Claim::Discard(job), Summon::Nobody);
        };
        self.give_back_place(&mut line);
        counters.running.fetch_add(1, Relaxed);
        let summon = if line.jobs.len() > line.dead {
            self.summon(&mut line)
        } else {
            Summon::Nobody
        };
        (Claim::Run(job, attempt), summon)
    }

    /// Closes the line and takes every job out of it, each settled and its
    /// place given back, for the caller to account as cancelled. Jobs that
    /// were already settled come back with `None`.
    pub(crate) fn close_and_drain(&self) -> Vec<(Accepted, Option<u8>)> {
        let (jobs, parked) = {
            let mut line = lock(&self.line);
            line.closed = true;
            line.sealed = true;
            let jobs: Vec<_> = line
                .jobs
                .take_all()
                .into_iter()
                .map(|job| {
                    let phase = job.cell.settle();
                    if let Some(phase) = phase {
                        self.left_waiting(&mut line, phase);
                    }
                    (job, phase)
                })
                .collect();
            line.dead = 0;
            self.publish_len(&line);
            (jobs, mem::take(&mut line.parked))
        };
        for parker in parked {
            parker.fire();
        }
        jobs
    }

    /// Refuses further jobs; workers stop once the line is empty.
    pub(crate) fn close(&self) {
        let parked = {
            let mut line = lock(&self.line);
            line.closed = true;
            mem::take(&mut line.parked)
        };
        for parker in parked {
            parker.fire();
        }
    }

    fn publish_len(&self, line: &Line) {
        self.queued.store(line.jobs.len() - line.dead, Relaxed);
    }
}
