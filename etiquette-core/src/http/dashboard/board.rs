//! What the dashboard knows of a queue beyond its counters: the tasks
//! running now with their progress, those waiting to retry, the recent
//! outcomes and failures, the events of each recent task, and the counters
//! sampled over time. Written by the queue's follower (`follow.rs`) from its
//! all-events subscription; read by every dashboard request; each change is
//! broadcast to the pages watching live (`live.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::api::serde_impls::unix_millis;
use crate::{EventKind, Stats, StoredJobs, TaskEvent, TaskId, TaskStatus};

/// How often the counters are sampled, for the rates chart.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often, at most, the counters are sent between samples while events
/// come: so that they keep up with the tasks shown, without a message per
/// event.
pub(crate) const COUNTERS_EVERY: Duration = Duration::from_millis(250);
/// How many samples apart the jobs a durable backend stores are counted
/// (a query across every process's jobs, capped; see `StoredJobs`).
pub(crate) const STORED_EVERY: u32 = 2;
/// Samples kept: five minutes of history.
const SAMPLES: usize = 300;
/// Outcomes kept, and failures kept (apart, so that a stream of successes
/// does not push the last failure out of sight).
const RECENT: usize = 50;
/// Tasks whose events are kept, the most recently seen first to stay.
const FOLLOWED_TASKS: usize = 256;
/// Events kept per task, of which at most [`PROGRESS_PER_TASK`] progress
/// reports (the latest): a task reporting every millisecond would
/// otherwise push its start out of its own history.
const EVENTS_PER_TASK: usize = 64;
const PROGRESS_PER_TASK: usize = 16;
/// Changes a page may fall behind by before it is sent a fresh snapshot.
const UPDATES: usize = 512;

/// An event, and when the dashboard saw it (milliseconds since the Unix
/// epoch).
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) at_ms: i64,
    pub(crate) event: TaskEvent,
    /// The task's typed job, if the board knows it: named by the event
    /// itself (`queued`, `scheduled`, `started`) or, for the others, by an
    /// earlier event of the task (see [`State::record`]), so that a
    /// failure names its job, and can be retried, as the task's start did.
    pub(crate) job: Option<&'static str>,
}

impl Seen {
    pub(crate) fn now(event: TaskEvent) -> Self {
        Self {
            at_ms: now_ms(),
            job: event.kind.job(),
            event,
        }
    }

    /// Whether a visitor may retry the task from this event, its end (see
    /// [`retriable`]).
    pub(crate) fn retriable(&self) -> bool {
        retriable(&self.event.kind, self.job)
    }
}

/// Whether a task that ended with `end` (its final event) may be retried
/// by hand from the dashboard: it failed, timed out or was cancelled, and
/// it is a typed job, named by its events. A closure task keeps no work to
/// run again (the queue answers `409`), and a job of a kind the board never
/// heard named (started in another process, of a kind this one does not
/// run) is not offered either: the page shows no Retry button for them.
pub(crate) fn retriable(end: &EventKind, job: Option<&str>) -> bool {
    job.is_some()
        && matches!(
            end,
            EventKind::Failed { .. } | EventKind::TimedOut { .. } | EventKind::Cancelled
        )
}

pub(crate) fn now_ms() -> i64 {
    unix_millis(SystemTime::now())
}

/// A task running now, as its events tell.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    /// Its typed job, if known (see [`Seen::job`]).
    pub(crate) job: Option<&'static str>,
    /// 0 when the board saw its progress but not its start.
    pub(crate) attempt: u32,
    pub(crate) started_ms: i64,
    pub(crate) fraction: Option<f32>,
    pub(crate) message: Option<String>,
}

/// A task waiting out the backoff before its next attempt.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    /// Its typed job, if known (see [`Seen::job`]).
    pub(crate) job: Option<&'static str>,
    pub(crate) attempt: u32,
    pub(crate) backoff: Duration,
    pub(crate) error: String,
    pub(crate) at_ms: i64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at_ms: i64,
    pub(crate) stats: Stats,
    pub(crate) released: bool,
}

/// One task's events, the oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) events: VecDeque<Seen>,
    /// Events dropped to keep within the bounds.
    pub(crate) omitted: u64,
}

impl History {
    fn push(&mut self, seen: Seen) {
        let is_progress = |seen: &Seen| matches!(seen.event.kind, EventKind::Progress { .. });
        if is_progress(&seen)
            && self.events.iter().filter(|old| is_progress(old)).count() >= PROGRESS_PER_TASK
            && let Some(oldest) = self.events.iter().position(is_progress)
        {
            self.events.remove(oldest);
            self.omitted += 1;
        }
        if self.events.len() >= EVENTS_PER_TASK {
            self.events.pop_front();
            self.omitted += 1;
        }
        self.events.push_back(seen);
    }
}

/// A change of the board, as the pages watching it live receive it.
#[derive(Debug, Clone)]
pub(crate) enum Update {
    Event(Seen),
    /// A sample, kept for the chart.
    Sample(Sample),
    /// The counters between samples, not kept.
    Counters(Sample),
    /// The jobs a durable backend stores, counted again.
    Stored(StoredJobs),
    /// The board was corrected after the follower fell behind: a page
    /// should start again from a snapshot.
    Resync,
    /// The queue closed its event streams: nothing more will change.
    Closed,
}

/// The queue's settings a page shows beside its counters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_concurrent_tasks: usize,
    pub(crate) queue_capacity: usize,
}

/// The board of one queue, shared by all its dashboards.
#[derive(Debug)]
pub(crate) struct Board {
    pub(crate) limits: Limits,
    state: Mutex<State>,
    updates: broadcast::Sender<Update>,
}

/// What the board holds; read under its lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) running: BTreeMap<TaskId, Running>,
    pub(crate) retrying: BTreeMap<TaskId, Retry>,
    /// Final events, the newest last.
    pub(crate) ended: VecDeque<Seen>,
    /// Final events of failures and time-outs, the newest last.
    pub(crate) failures: VecDeque<Seen>,
    histories: HashMap<TaskId, History>,
    /// The tasks in `histories`, in the order they were first seen.
    followed: VecDeque<TaskId>,
    pub(crate) samples: VecDeque<Sample>,
    /// The jobs a durable backend stores, as last counted; `None` on the
    /// in-memory queue.
    pub(crate) stored: Option<StoredJobs>,
    /// Events the follower missed by falling behind the queue.
    pub(crate) missed: u64,
    pub(crate) closed: bool,
}

fn push_capped<T>(list: &mut VecDeque<T>, item: T, cap: usize) {
    if list.len() >= cap {
        list.pop_front();
    }
    list.push_back(item);
}

impl State {
    /// Whether `seen` is the final event of a task whose end the board has
    /// already recorded. (On PostgreSQL a job followed in this process, by
    /// its handle's outcome or a stream of its own, has its end announced
    /// once as run here and once as heard back.)
    /// A task retried by hand after it ended lives again: its new life's
    /// steps come after the old end, and its new end counts.
    fn ends_again(&self, seen: &Seen) -> bool {
        let is_step = |old: &&Seen| !matches!(old.event.kind, EventKind::Progress { .. });
        seen.event.kind.is_final()
            && self.histories.get(&seen.event.task).is_some_and(|history| {
                let last_step = history.events.iter().rev().find(is_step);
                last_step.is_some_and(|old| old.event.kind.is_final())
            })
    }

    /// Takes one event into the board; returns it as the board saw it,
    /// naming the task's job if an earlier event did.
    fn record(&mut self, mut seen: Seen) -> Seen {
        let id = seen.event.task;
        if seen.job.is_none() {
            seen.job = self.job_of(id);
        }
        let job = seen.job;
        if !seen.event.kind.is_final() && !matches!(seen.event.kind, EventKind::Progress { .. }) {
            // Back in line or running again (retried by hand): no longer a
            // failure to act on. Its end stays among the recent outcomes.
            self.failures.retain(|failure| failure.event.task != id);
        }
        match &seen.event.kind {
            EventKind::Queued { .. } | EventKind::Scheduled { .. } => {}
            EventKind::Started { attempt, .. } => {
                self.retrying.remove(&id);
                let running = Running {
                    job,
                    attempt: *attempt,
                    started_ms: seen.at_ms,
                    fraction: None,
                    message: None,
                };
                self.running.insert(id, running);
            }
            EventKind::Progress { fraction, message } => {
                // Seen without its start (the board began later, or the
                // start was missed): shown all the same.
                let running = self.running.entry(id).or_insert_with(|| Running {
                    job,
                    attempt: 0,
                    started_ms: seen.at_ms,
                    fraction: None,
                    message: None,
                });
                // A report may give a fraction, a message, or both: what it
                // leaves out stays as the last report said.
                if fraction.is_some() {
                    running.fraction = *fraction;
                }
                if message.is_some() {
                    running.message.clone_from(message);
                }
            }
            EventKind::Retrying {
                attempt,
                backoff,
                error,
            } => {
                self.running.remove(&id);
                let retry = Retry {
                    job,
                    attempt: *attempt,
                    backoff: *backoff,
                    error: error.clone(),
                    at_ms: seen.at_ms,
                };
                self.retrying.insert(id, retry);
            }
            kind => {
                self.running.remove(&id);
                self.retrying.remove(&id);
                if matches!(kind, EventKind::Failed { .. } | EventKind::TimedOut { .. }) {
                    push_capped(&mut self.failures, seen.clone(), RECENT);
                }
                push_capped(&mut self.ended, seen.clone(), RECENT);
            }
        }
        self.remember(seen.clone());
        seen
    }

    /// Task `id`'s typed job, as its events named it: kept with it while it
    /// runs or waits to retry, and with its history (whose last event names
    /// it if any did: each event after the first named is named on record).
    pub(crate) fn job_of(&self, id: TaskId) -> Option<&'static str> {
        let running = || self.running.get(&id)?.job;
        let retrying = || self.retrying.get(&id)?.job;
        let history = || self.histories.get(&id)?.events.back()?.job;
        running().or_else(retrying).or_else(history)
    }

    fn remember(&mut self, seen: Seen) {
        let id = seen.event.task;
        if !self.histories.contains_key(&id) {
            if self.followed.len() >= FOLLOWED_TASKS
                && let Some(oldest) = self.followed.pop_front()
            {
                self.histories.remove(&oldest);
            }
            self.followed.push_back(id);
        }
        self.histories.entry(id).or_default().push(seen);
    }

    /// Task `id`'s events, if the board kept any.
    pub(crate) fn history(&self, id: TaskId) -> Option<&History> {
        self.histories.get(&id)
    }

    /// Corrects what the board says of task `id` by its status in the
    /// backend (`None`: unknown there), after events were missed.
    fn correct(&mut self, id: TaskId, status: Option<TaskStatus>) {
        let job = self.job_of(id);
        match status {
            Some(TaskStatus::Running { attempt }) => {
                self.retrying.remove(&id);
                let now = now_ms();
                let running = self.running.entry(id).or_insert(Running {
                    job,
                    attempt,
                    started_ms: now,
                    fraction: None,
                    message: None,
                });
                running.attempt = attempt;
            }
            Some(TaskStatus::Retrying {
                attempt,
                backoff,
                error,
            }) => {
                self.running.remove(&id);
                let retry = Retry {
                    job,
                    attempt,
                    backoff,
                    error: error.to_string(),
                    at_ms: now_ms(),
                };
                self.retrying.insert(id, retry);
            }
            Some(status) if status.is_finished() => {
                // Its final event was missed: made up from its status, with
                // no event id of its own.
                let event = TaskEvent {
                    id: 0,
                    task: id,
                    kind: EventKind::from_final(&status),
                };
                self.record(Seen::now(event));
            }
            // Back in line, or gone from the backend.
            _ => {
                self.running.remove(&id);
                self.retrying.remove(&id);
            }
        }
    }
}

impl Board {
    pub(crate) fn new(limits: Limits) -> Self {
        let (updates, _) = broadcast::channel(UPDATES);
        Self {
            limits,
            state: Mutex::default(),
            updates,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update under this lock completes before anything can
        // panic, and no user code runs under it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the board.
    pub(crate) fn read<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        read(&self.lock())
    }

    /// Reads the board and subscribes to its changes from that moment on,
    /// under one lock: nothing falls between, nothing comes twice.
    pub(crate) fn read_and_watch<T>(
        &self,
        read: impl FnOnce(&State) -> T,
    ) -> (T, broadcast::Receiver<Update>) {
        let state = self.lock();
        (read(&state), self.updates.subscribe())
    }

    /// Takes one event in. (Sent under the lock, so that changes reach the
    /// pages in the order they were made.)
    pub(crate) fn apply(&self, seen: Seen) {
        let mut state = self.lock();
        if state.ends_again(&seen) {
            return;
        }
        let seen = state.record(seen);
        // No page watching is not an error.
        let _ = self.updates.send(Update::Event(seen));
    }

    /// Takes a sample of the counters in.
    pub(crate) fn sample(&self, stats: Stats, released: bool) {
        let sample = Sample {
            at_ms: now_ms(),
            stats,
            released,
        };
        let mut state = self.lock();
        push_capped(&mut state.samples, sample, SAMPLES);
        let _ = self.updates.send(Update::Sample(sample));
    }

    /// Takes in the jobs a durable backend stores, as counted now.
    pub(crate) fn stored(&self, stored: StoredJobs) {
        let mut state = self.lock();
        state.stored = Some(stored);
        let _ = self.updates.send(Update::Stored(stored));
    }

    /// Sends the counters now to the pages, without keeping them.
    pub(crate) fn counters(&self, stats: Stats, released: bool) {
        let sample = Sample {
            at_ms: now_ms(),
            stats,
            released,
        };
        let _state = self.lock();
        let _ = self.updates.send(Update::Counters(sample));
    }

    /// The tasks the board shows running or waiting to retry.
    pub(crate) fn unfinished(&self) -> Vec<TaskId> {
        let state = self.lock();
        state
            .running
            .keys()
            .chain(state.retrying.keys())
            .copied()
            .collect()
    }

    /// After `missed` events were lost: corrects each unfinished task by
    /// its status (`statuses`), then tells the pages to start again.
    pub(crate) fn correct(&self, missed: u64, statuses: Vec<(TaskId, Option<TaskStatus>)>) {
        let mut state = self.lock();
        state.missed = state.missed.saturating_add(missed);
        for (id, status) in statuses {
            state.correct(id, status);
        }
        let _ = self.updates.send(Update::Resync);
    }

    /// The queue closed its event streams: the board stays as it is.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let _ = self.updates.send(Update::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: u64, task: u64, kind: EventKind) -> Seen {
        Seen {
            at_ms: i64::try_from(id).unwrap(),
            job: kind.job(),
            event: TaskEvent {
                id,
                task: TaskId::new(task),
                kind,
            },
        }
    }

    #[test]
    fn a_task_runs_reports_retries_and_fails() {
        let mut state = State::default();
        state.record(seen(1, 7, EventKind::Queued { job: None }));
        state.record(seen(
            2,
            7,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        let progress = EventKind::Progress {
            fraction: Some(0.5),
            message: Some("half".into()),
        };
        state.record(seen(3, 7, progress));
        // A message alone keeps the fraction.
        let message = EventKind::Progress {
            fraction: None,
            message: Some("still".into()),
        };
        state.record(seen(4, 7, message));
        let running = &state.running[&TaskId::new(7)];
        assert_eq!(
            (
                running.attempt,
                running.fraction,
                running.message.as_deref()
            ),
            (1, Some(0.5), Some("still"))
        );
        let retrying = EventKind::Retrying {
            attempt: 1,
            backoff: Duration::from_secs(1),
            error: "refused".into(),
        };
        state.record(seen(5, 7, retrying));
        assert!(state.running.is_empty());
        assert_eq!(state.retrying[&TaskId::new(7)].error, "refused");
        state.record(seen(
            6,
            7,
            EventKind::Started {
                attempt: 2,
                job: None,
            },
        ));
        assert!(state.retrying.is_empty());
        let failed = EventKind::Failed {
            attempts: 2,
            error: "refused again".into(),
        };
        state.record(seen(7, 7, failed));
        assert!(state.running.is_empty() && state.retrying.is_empty());
        assert_eq!((state.ended.len(), state.failures.len()), (1, 1));
        assert_eq!(state.history(TaskId::new(7)).unwrap().events.len(), 7);
    }

    #[test]
    fn a_jobs_name_is_kept_from_its_first_event_to_its_end() {
        let mut state = State::default();
        let welcome = Some("welcome");
        let id = TaskId::new(7);
        state.record(seen(1, 7, EventKind::Queued { job: welcome }));
        // Seen running by its progress, its start missed: named all the same.
        let progress = EventKind::Progress {
            fraction: Some(0.5),
            message: None,
        };
        let recorded = state.record(seen(2, 7, progress));
        assert_eq!(
            recorded.job, welcome,
            "an event that names nothing is named"
        );
        assert_eq!(state.running[&id].job, welcome);
        let retrying = EventKind::Retrying {
            attempt: 1,
            backoff: Duration::from_secs(1),
            error: "down".into(),
        };
        state.record(seen(3, 7, retrying));
        assert_eq!(state.retrying[&id].job, welcome);
        // Its history forgotten, it is still known while it waits.
        state.histories.clear();
        assert_eq!(state.job_of(id), welcome);
        state.record(seen(
            4,
            7,
            EventKind::Started {
                attempt: 2,
                job: None,
            },
        ));
        assert_eq!(state.running[&id].job, welcome);
        let failed = EventKind::Failed {
            attempts: 2,
            error: "down again".into(),
        };
        state.record(seen(5, 7, failed));
        assert_eq!(state.failures[0].job, welcome, "its failure names it");
        assert_eq!(state.ended[0].job, welcome);
        assert_eq!(state.job_of(id), welcome, "and so does its history");
        // Corrected after missed events: still named.
        state.record(seen(6, 7, EventKind::Queued { job: welcome }));
        state.histories.clear();
        state.record(seen(
            7,
            7,
            EventKind::Started {
                attempt: 3,
                job: welcome,
            },
        ));
        state.correct(
            id,
            Some(TaskStatus::Retrying {
                attempt: 3,
                backoff: Duration::from_secs(1),
                error: crate::TaskError::from_message("down".to_owned()),
            }),
        );
        assert_eq!(state.retrying[&id].job, welcome);
    }

    #[test]
    fn only_a_named_tasks_failure_is_retriable() {
        let mut state = State::default();
        let failed = || EventKind::Failed {
            attempts: 1,
            error: "down".into(),
        };
        // A typed job and a closure task, both failed.
        state.record(seen(
            1,
            1,
            EventKind::Started {
                attempt: 1,
                job: Some("welcome"),
            },
        ));
        state.record(seen(2, 1, failed()));
        state.record(seen(
            3,
            2,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        state.record(seen(4, 2, failed()));
        let offered: Vec<(u64, bool)> = state
            .failures
            .iter()
            .map(|seen| (seen.event.task.get(), seen.retriable()))
            .collect();
        assert_eq!(offered, [(1, true), (2, false)]);
        // A job's other ends: retriable if it did not succeed.
        let named = Some("welcome");
        assert!(retriable(&EventKind::Cancelled, named));
        assert!(retriable(&EventKind::TimedOut { attempts: 1 }, named));
        assert!(!retriable(&EventKind::Succeeded { attempts: 1 }, named));
        assert!(!retriable(&EventKind::Queued { job: named }, named));
        assert!(!retriable(&EventKind::Cancelled, None));
    }

    #[test]
    fn a_task_ends_once() {
        let board = Board::new(Limits {
            max_concurrent_tasks: 1,
            queue_capacity: 1,
        });
        board.apply(seen(
            1,
            4,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        board.apply(seen(2, 4, EventKind::Cancelled));
        board.apply(seen(3, 4, EventKind::Cancelled));
        board.read(|state| {
            assert_eq!(state.ended.len(), 1);
            assert_eq!(state.history(TaskId::new(4)).unwrap().events.len(), 2);
        });
    }

    #[test]
    fn a_task_retried_by_hand_lives_and_ends_again() {
        let board = Board::new(Limits {
            max_concurrent_tasks: 1,
            queue_capacity: 1,
        });
        let failed = || EventKind::Failed {
            attempts: 1,
            error: "down".into(),
        };
        board.apply(seen(
            1,
            4,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        board.apply(seen(2, 4, failed()));
        board.read(|state| assert_eq!(state.failures.len(), 1));
        board.apply(seen(3, 4, EventKind::Queued { job: None }));
        board.read(|state| {
            assert!(state.failures.is_empty(), "no longer a failure to act on");
            assert_eq!(state.ended.len(), 1, "its end stays an outcome");
        });
        board.apply(seen(
            4,
            4,
            EventKind::Started {
                attempt: 2,
                job: None,
            },
        ));
        board.read(|state| assert!(state.running.contains_key(&TaskId::new(4))));
        board.apply(seen(5, 4, EventKind::Succeeded { attempts: 2 }));
        board.apply(seen(6, 4, EventKind::Succeeded { attempts: 2 }));
        board.read(|state| {
            assert!(state.running.is_empty());
            assert_eq!(state.ended.len(), 2, "the new end counts, once");
            assert_eq!(state.history(TaskId::new(4)).unwrap().events.len(), 5);
        });
    }

    #[test]
    fn histories_are_bounded_and_keep_the_start() {
        let mut state = State::default();
        state.record(seen(
            1,
            1,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        for id in 2..1000 {
            let progress = EventKind::Progress {
                fraction: Some(0.5),
                message: None,
            };
            state.record(seen(id, 1, progress));
        }
        let history = state.history(TaskId::new(1)).unwrap();
        assert_eq!(history.events.len(), 1 + PROGRESS_PER_TASK);
        assert_eq!(history.events[0].event.id, 1, "the start is kept");
        assert_eq!(history.omitted, 998 - PROGRESS_PER_TASK as u64);
        for task in 2..=(FOLLOWED_TASKS as u64 + 1) {
            state.record(seen(task * 1000, task, EventKind::Queued { job: None }));
        }
        assert!(state.history(TaskId::new(1)).is_none(), "the oldest goes");
        assert_eq!(state.histories.len(), FOLLOWED_TASKS);
    }

    #[test]
    fn outcomes_and_failures_are_bounded_apart() {
        let mut state = State::default();
        let failed = EventKind::Failed {
            attempts: 1,
            error: "x".into(),
        };
        state.record(seen(1, 1, failed));
        for task in 2..200 {
            state.record(seen(task, task, EventKind::Succeeded { attempts: 1 }));
        }
        assert_eq!(state.ended.len(), RECENT);
        assert_eq!(state.failures.len(), 1, "successes do not push it out");
    }

    #[test]
    fn missed_events_are_corrected_from_statuses() {
        let mut state = State::default();
        state.record(seen(
            1,
            1,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        state.record(seen(
            2,
            2,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        state.record(seen(
            3,
            3,
            EventKind::Started {
                attempt: 1,
                job: None,
            },
        ));
        state.correct(TaskId::new(1), Some(TaskStatus::Succeeded { attempts: 1 }));
        state.correct(TaskId::new(2), None);
        state.correct(TaskId::new(3), Some(TaskStatus::Running { attempt: 2 }));
        assert_eq!(
            state.running.keys().copied().collect::<Vec<_>>(),
            [TaskId::new(3)]
        );
        assert_eq!(state.running[&TaskId::new(3)].attempt, 2);
        assert_eq!(state.ended.len(), 1);
        assert_eq!(state.ended[0].event.kind.name(), "succeeded");
    }
}
