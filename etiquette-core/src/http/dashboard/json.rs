//! What the page reads, as JSON: the snapshot of the board, a task with its
//! events, the live changes; each with what the dashboard may not show
//! left out (error texts, progress messages), so that nothing hidden ever
//! leaves the server.

use serde_json::{Map, Value, json};

use super::board::{History, Limits, Sample, Seen, State, retriable};
use crate::{EventKind, Stats, StoredJobs, TaskId, TaskStatus};

/// The columns of each sample in a snapshot's `history.rows`.
const SAMPLE_COLUMNS: [&str; 8] = [
    "at_ms",
    "accepted",
    "completed",
    "failed",
    "cancelled",
    "running",
    "queued",
    "retrying",
];

/// What a dashboard lets its page do and see; see
/// [`Dashboard`](super::Dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) cancel: bool,
    pub(crate) retry: bool,
    pub(crate) errors: bool,
    pub(crate) messages: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            cancel: false,
            retry: false,
            errors: true,
            messages: true,
        }
    }
}

impl View {
    /// Leaves out of a status or event object what may not be shown,
    /// saying so (`error_hidden`, `message_hidden`) so the page can tell
    /// "hidden" from "none".
    fn redact(self, object: &mut Map<String, Value>) {
        if !self.errors && object.remove("error").is_some() {
            object.insert("error_hidden".into(), Value::Bool(true));
        }
        if !self.messages && object.remove("message").is_some() {
            object.insert("message_hidden".into(), Value::Bool(true));
        }
    }

    /// An event as the page gets it: the event's own JSON (as every SSE
    /// stream frames it), with `at_ms`, when the dashboard saw it, `job`,
    /// its task's job when the board knows it (an end names the job its
    /// start did), and, on an end the task may be retried from,
    /// `"retriable": true` (see [`Seen::retriable`]).
    pub(crate) fn event(self, seen: &Seen) -> Value {
        let mut value = serde_json::to_value(&seen.event).unwrap_or_default();
        if let Value::Object(object) = &mut value {
            object.insert("at_ms".into(), seen.at_ms.into());
            if let Some(job) = seen.job {
                object.entry("job").or_insert_with(|| job.into());
            }
            if seen.retriable() {
                object.insert("retriable".into(), true.into());
            }
            self.redact(object);
        }
        value
    }

    fn status(self, status: &TaskStatus) -> Value {
        let mut value = serde_json::to_value(status).unwrap_or_default();
        if let Value::Object(object) = &mut value {
            self.redact(object);
        }
        value
    }

    fn options(self) -> Value {
        json!({
            "cancel": self.cancel,
            "retry": self.retry,
            "errors": self.errors,
            "messages": self.messages,
        })
    }

    /// The counters of a sample, as a row of [`SAMPLE_COLUMNS`].
    fn sample_row(sample: &Sample) -> Value {
        let stats = &sample.stats;
        json!([
            sample.at_ms,
            stats.accepted,
            stats.completed,
            stats.failed,
            stats.cancelled,
            stats.running,
            stats.queued,
            stats.retrying,
        ])
    }

    /// A sample as a live change: the counters now, and the chart's row.
    pub(crate) fn sample(sample: &Sample) -> Value {
        let mut value = Self::counters(sample);
        value["row"] = Self::sample_row(sample);
        value
    }

    /// The counters now, between samples (no row for the chart).
    pub(crate) fn counters(sample: &Sample) -> Value {
        json!({
            "at_ms": sample.at_ms,
            "released": sample.released,
            "stats": sample.stats,
        })
    }

    /// The whole board, with `stats` as the counters now.
    pub(crate) fn snapshot(
        self,
        limits: Limits,
        state: &State,
        stats: &Stats,
        released: bool,
    ) -> Value {
        let running: Vec<Value> = state
            .running
            .iter()
            .map(|(id, running)| {
                let mut object = json!({
                    "id": id,
                    "job": running.job,
                    "attempt": running.attempt,
                    "started_ms": running.started_ms,
                    "fraction": running.fraction,
                    "message": running.message,
                });
                if let Value::Object(object) = &mut object {
                    self.redact(object);
                }
                object
            })
            .collect();
        let retrying: Vec<Value> = state
            .retrying
            .iter()
            .map(|(id, retry)| {
                let mut object = json!({
                    "id": id,
                    "job": retry.job,
                    "attempt": retry.attempt,
                    "backoff_ms": retry.backoff.as_millis(),
                    "at_ms": retry.at_ms,
                    "error": retry.error,
                });
                if let Value::Object(object) = &mut object {
                    self.redact(object);
                }
                object
            })
            .collect();
        // The newest first, as the page lists them.
        let newest_first = |list: &std::collections::VecDeque<Seen>| -> Vec<Value> {
            list.iter().rev().map(|seen| self.event(seen)).collect()
        };
        json!({
            "options": self.options(),
            "queue": {
                "max_concurrent_tasks": limits.max_concurrent_tasks,
                "queue_capacity": limits.queue_capacity,
                "released": released,
            },
            "closed": state.closed,
            "stats": stats,
            "history": {
                "interval_ms": super::board::SAMPLE_EVERY.as_millis(),
                "columns": SAMPLE_COLUMNS,
                "rows": state.samples.iter().map(Self::sample_row).collect::<Vec<_>>(),
            },
            "running": running,
            "retrying": retrying,
            "failures": newest_first(&state.failures),
            "ended": newest_first(&state.ended),
            "stored": state.stored.as_ref().map(Self::stored),
            "missed": state.missed,
        })
    }

    /// The jobs a durable backend stores, across every process.
    pub(crate) fn stored(stored: &StoredJobs) -> Value {
        json!({
            "queued": stored.queued,
            "scheduled": stored.scheduled,
            "running": stored.running,
            "retrying": stored.retrying,
            "cap": stored.cap,
        })
    }

    /// Task `id`: its status (`null` when the backend no longer knows it),
    /// its typed `job` as the board knows it (`null` if not), whether it
    /// may be retried now (see [`retriable`]), and the events the board
    /// kept of it, the oldest first.
    pub(crate) fn task(
        self,
        id: TaskId,
        status: Option<&TaskStatus>,
        job: Option<&'static str>,
        history: Option<&History>,
    ) -> Value {
        let events: Vec<Value> = history
            .map(|history| history.events.iter().map(|seen| self.event(seen)).collect())
            .unwrap_or_default();
        let ended = status.filter(|status| status.is_finished());
        let retriable = ended.is_some_and(|status| retriable(&EventKind::from_final(status), job));
        json!({
            "id": id,
            "job": job,
            "retriable": retriable,
            "status": status.map(|status| self.status(status)),
            "events": events,
            "omitted": history.map_or(0, |history| history.omitted),
            "options": self.options(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TaskEvent;

    fn failed() -> Seen {
        Seen {
            at_ms: 5,
            job: None,
            event: TaskEvent {
                id: 9,
                task: TaskId::new(3),
                kind: EventKind::Failed {
                    attempts: 2,
                    error: "password=hunter2 rejected".into(),
                },
            },
        }
    }

    #[test]
    fn events_keep_their_json_and_gain_when_they_were_seen() {
        let shown = View::default().event(&failed());
        assert_eq!(
            shown,
            json!({"id":9,"task":3,"event":"failed","attempts":2,"error":"password=hunter2 rejected","at_ms":5})
        );
    }

    #[test]
    fn a_jobs_events_name_it_and_its_failure_is_retriable() {
        let named = Seen {
            job: Some("welcome"),
            ..failed()
        };
        assert_eq!(
            View::default().event(&named),
            json!({"id":9,"task":3,"event":"failed","attempts":2,"error":"password=hunter2 rejected",
                   "at_ms":5,"job":"welcome","retriable":true})
        );
        // A closure task's (as `failed()` is): neither.
        let shown = View::default().event(&failed());
        assert!(
            shown.get("job").is_none() && shown.get("retriable").is_none(),
            "{shown}"
        );
        // Its page says so too, from its status.
        let status = TaskStatus::Failed {
            attempts: 2,
            error: crate::TaskError::from_message("down"),
        };
        let task = View::default().task(TaskId::new(3), Some(&status), Some("welcome"), None);
        assert_eq!(
            (&task["job"], &task["retriable"]),
            (&json!("welcome"), &json!(true))
        );
        let task = View::default().task(TaskId::new(3), Some(&status), None, None);
        assert_eq!(
            (&task["job"], &task["retriable"]),
            (&json!(null), &json!(false))
        );
        let running = TaskStatus::Running { attempt: 1 };
        let task = View::default().task(TaskId::new(3), Some(&running), Some("welcome"), None);
        assert_eq!(task["retriable"], false, "not before it ended");
    }

    #[test]
    fn hidden_texts_never_leave() {
        let view = View {
            errors: false,
            messages: false,
            ..View::default()
        };
        let shown = view.event(&failed()).to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains(r#""error_hidden":true"#), "{shown}");
        let progress = Seen {
            at_ms: 1,
            job: None,
            event: TaskEvent {
                id: 1,
                task: TaskId::new(1),
                kind: EventKind::Progress {
                    fraction: Some(0.5),
                    message: Some("mailing ada@example.com".into()),
                },
            },
        };
        let shown = view.event(&progress).to_string();
        assert!(!shown.contains("ada@"), "{shown}");
        assert!(shown.contains(r#""fraction":0.5"#), "{shown}");
    }
}
