//! Task events across processes: each transition of a job run here is
//! announced with `NOTIFY` on `<schema>.events` (sent by the completer after
//! the outcome it follows is written), and the events other processes
//! announce are published to this process's subscribers, so that the
//! Server-Sent Events of a job run on machine A are served by machine B.
//!
//! An event is a small JSON object: the sending process (`o`: a process
//! hears its own), the job (`t`), and the event (`k` and its fields; `j`,
//! the job's kind, on `queued` and `started`, the events that name it,
//! which a hearing process maps back to the name of a kind it registered,
//! or to none: it may not run every kind). Texts
//! are cut to fit PostgreSQL's 8,000-byte payloads. One notification
//! carries as many events as fit ([`bundle`]), one per line: a notification
//! costs the server and every listening process far more than its bytes
//! (two per job, one at a time, took a third of a busy worker's time).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use etiquette_core::backend::{Engine, LocalTask};
use etiquette_core::{EventKind, TaskError, TaskId, TaskStatus};
use serde_json::{Value, json};

use super::Postgres;
use crate::Jobs;
use crate::jobs::{duration_ms, millis};

/// The jobs run elsewhere that subscribers here follow, by id: each a task
/// the engine watches, whose final event ends their subscriptions.
#[derive(Default)]
pub(crate) struct Watched {
    tasks: Mutex<HashMap<i64, Followed>>,
}

struct Followed {
    task: LocalTask,
    /// The state and attempt its row last showed, when it is followed by
    /// reading its row (notifications off).
    seen: Option<(&'static str, u32)>,
}

impl Watched {
    fn tasks(&self) -> MutexGuard<'_, HashMap<i64, Followed>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The task following job `id` here, watched from now if it was not.
    pub(crate) fn watch(&self, engine: &Engine<Postgres>, id: i64) -> LocalTask {
        let mut tasks = self.tasks();
        let followed = tasks.entry(id).or_insert_with(|| Followed {
            task: engine.watch(TaskId::from(id.unsigned_abs())),
            seen: None,
        });
        followed.task.clone()
    }

    /// The jobs followed here.
    pub(crate) fn ids(&self) -> Vec<i64> {
        self.tasks().keys().copied().collect()
    }

    /// Job `id`'s row reads `status` (see `follow.rs`): its end is
    /// published, unless its followers already had it, and, if `publish`
    /// (notifications are off, and it does not run here, where the engine
    /// publishes its steps), the step it took since the last read: rows
    /// show states, so steps between two reads, and progress, are not seen.
    /// `job` is the row's kind, if this process registered it.
    pub(crate) fn read(
        &self,
        engine: &Engine<Postgres>,
        id: i64,
        (status, job): (TaskStatus, Option<&'static str>),
        publish: bool,
    ) {
        if status.is_finished() {
            self.finish_followed(engine, id, status);
            return;
        }
        let now = (status.name(), status.attempts());
        {
            let mut tasks = self.tasks();
            let Some(followed) = tasks.get_mut(&id) else {
                return;
            };
            // The first read is where its followers begin: not a step.
            let before = followed.seen.replace(now);
            if !publish || before.is_none_or(|before| before == now) {
                return;
            }
        }
        let kind = match status {
            TaskStatus::Running { attempt } => EventKind::Started { attempt, job },
            TaskStatus::Retrying {
                attempt,
                backoff,
                error,
            } => EventKind::Retrying {
                attempt,
                backoff,
                error: error.to_string(),
            },
            _ => return, // back in line (handed back): no event for it
        };
        engine.publish(TaskId::from(id.unsigned_abs()), kind);
    }

    /// Job `id`, followed here, finished with `status`, as its row shows:
    /// its followers get its final event, unless a notification ended them
    /// already (then it is followed no more, and nothing is published).
    pub(crate) fn finish_followed(&self, engine: &Engine<Postgres>, id: i64, status: TaskStatus) {
        let followed = self.tasks().remove(&id);
        if let Some(followed) = followed {
            engine.finish_watched(&followed.task, status);
        }
    }

    /// Job `id` finished elsewhere with `status`: its followers here get its
    /// final event, once.
    pub(crate) fn finish(&self, engine: &Engine<Postgres>, id: i64, status: TaskStatus) {
        let task = self.tasks().remove(&id).map(|followed| followed.task);
        // Followed by nobody: still published, for subscribers to all events.
        let task = task.unwrap_or_else(|| engine.watch(TaskId::from(id.unsigned_abs())));
        engine.finish_watched(&task, status);
    }

    /// Publishes what `payload` announces, naming the jobs by the kinds
    /// registered here (`jobs`). This process (`owner`) hears
    /// its own announcements too: their events were published here as they
    /// happened, but a job that ended here just before someone here began
    /// to follow it (its row not yet written) ends for that follower now.
    pub(crate) fn heard(
        &self,
        engine: &Engine<Postgres>,
        (owner, jobs): (i64, &Jobs),
        payload: &str,
    ) {
        for event in payload.lines() {
            self.heard_one(engine, (owner, jobs), event);
        }
    }

    fn heard_one(&self, engine: &Engine<Postgres>, (owner, jobs): (i64, &Jobs), event: &str) {
        let Some((sender, heard)) = heard(event, jobs) else {
            return;
        };
        let own = sender == owner;
        match heard {
            Heard::Event(task, kind) if !own => engine.publish(task, kind),
            Heard::Event(..) => {}
            Heard::Final(task, status) => {
                let id = i64::try_from(task.get()).unwrap_or(i64::MAX);
                if !own || self.tasks().contains_key(&id) {
                    self.finish(engine, id, status);
                }
            }
        }
    }
}

/// Longest text (a progress message, an error) an event carries, as
/// JSON escapes it.
const TEXT: usize = 2_000;

/// Longest notification payload PostgreSQL takes (8,000 bytes), with room.
const PAYLOAD: usize = 7_900;

/// `events` (each one line: JSON escapes line breaks in strings) joined
/// into as few payloads as fit, in order.
pub(crate) fn bundle(events: &[String]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut payload = String::new();
    for event in events {
        if !payload.is_empty() && payload.len() + 1 + event.len() > PAYLOAD {
            payloads.push(std::mem::take(&mut payload));
        }
        if !payload.is_empty() {
            payload.push('\n');
        }
        payload.push_str(event);
    }
    if !payload.is_empty() {
        payloads.push(payload);
    }
    payloads
}

/// What a payload announces.
#[derive(Debug)]
pub(crate) enum Heard {
    /// A step of the job's life.
    Event(TaskId, EventKind),
    /// Its end.
    Final(TaskId, TaskStatus),
}

/// `text`, cut on a character boundary where its JSON form would pass
/// [`TEXT`] bytes (control characters take six each there).
fn cut(text: &str) -> String {
    let mut escaped = 0;
    for (at, character) in text.char_indices() {
        escaped += match character {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            control if control < ' ' => 6,
            other => other.len_utf8(),
        };
        if escaped > TEXT {
            return text[..at].to_owned();
        }
    }
    text.to_owned()
}

/// The payload announcing `kind` of job `task`, from process `owner`.
pub(crate) fn event(owner: i64, task: i64, kind: &EventKind) -> Option<String> {
    let mut body = match kind {
        // A job retried by hand, back in line (adds are not announced:
        // their followers begin with their row). Its name is added by the
        // statement that retries it, which reads it from the row (see
        // `Statements::retry_by_hand_and_notify`).
        EventKind::Queued { .. } => json!({ "k": "queued" }),
        EventKind::Started { attempt, .. } => json!({ "k": "started", "a": attempt }),
        EventKind::Progress { fraction, message } => {
            json!({ "k": "progress", "f": fraction, "m": message.as_deref().map(cut) })
        }
        EventKind::Retrying {
            attempt,
            backoff,
            error,
        } => json!({ "k": "retrying", "a": attempt, "b": millis(*backoff), "e": cut(error) }),
        _ => return None,
    };
    if let Some(job) = kind.job() {
        body["j"] = json!(job);
    }
    Some(with_sender(owner, task, body))
}

/// The payload announcing that job `task` ended here with `status`.
pub(crate) fn finished(owner: i64, task: i64, status: &TaskStatus) -> String {
    let error = status.error().map(|error| cut(&error.to_string()));
    let limit = match status {
        TaskStatus::TimedOut { limit, .. } => Some(millis(*limit)),
        _ => None,
    };
    let body = json!({
        "k": status.name(), "a": status.attempts(), "e": error, "l": limit,
    });
    with_sender(owner, task, body)
}

fn with_sender(owner: i64, task: i64, mut body: Value) -> String {
    body["o"] = json!(owner);
    body["t"] = json!(task);
    body.to_string()
}

/// Who sent `payload` and what it announces, its job named by the kind of
/// that name in `jobs` (none if this process registered no such kind);
/// `None` if it does not parse (from a newer or older version: ignored).
pub(crate) fn heard(payload: &str, jobs: &Jobs) -> Option<(i64, Heard)> {
    let body: Value = serde_json::from_str(payload).ok()?;
    let sender = body["o"].as_i64()?;
    let task = TaskId::from(body["t"].as_i64()?.unsigned_abs());
    let attempt = || u32::try_from(body["a"].as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    let ms = |key: &str| body[key].as_f64().and_then(duration_ms).unwrap_or_default();
    let attempts = attempt();
    let job = body["j"].as_str().and_then(|name| jobs.name(name));
    let heard = match body["k"].as_str()? {
        "queued" => Heard::Event(task, EventKind::Queued { job }),
        "started" => Heard::Event(
            task,
            EventKind::Started {
                attempt: attempts,
                job,
            },
        ),
        "progress" => Heard::Event(
            task,
            EventKind::Progress {
            #[allow(clippy::cast_possible_truncation)] // a fraction from 0 to 1
            fraction: body["f"].as_f64().map(|fraction| fraction as f32),
            message: text("m"),
        },
        ),
        "retrying" => Heard::Event(
            task,
            EventKind::Retrying {
                attempt: attempts,
                backoff: ms("b"),
                error: text("e").unwrap_or_default(),
            },
        ),
        "succeeded" => Heard::Final(task, TaskStatus::Succeeded { attempts }),
        "failed" => Heard::Final(
            task,
            TaskStatus::Failed {
                attempts,
                error: TaskError::from_message(text("e").unwrap_or_default()),
            },
        ),
        "timed_out" => Heard::Final(
            task,
            TaskStatus::TimedOut {
                attempts,
                limit: ms("l"),
            },
        ),
        "cancelled" => Heard::Final(task, TaskStatus::Cancelled),
        _ => return None,
    };
    Some((sender, heard))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use etiquette_core::{Job, TaskContext};
    use serde::{Deserialize, Serialize};

    use super::*;

    fn started(attempt: u32, job: Option<&'static str>) -> EventKind {
        EventKind::Started { attempt, job }
    }

    /// A kind a hearing process may have registered.
    #[derive(Serialize, Deserialize)]
    struct Welcome;

    impl Job for Welcome {
        const NAME: &'static str = "welcome";
        type Error = std::convert::Infallible;

        async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    #[test]
    fn a_jobs_name_crosses_to_a_process_that_runs_its_kind_and_no_further() {
        let runs_it = Jobs::new().register::<Welcome>().unwrap();
        let payload = event(7, 42, &started(1, Some(Welcome::NAME))).unwrap();
        assert!(payload.contains(r#""j":"welcome""#), "{payload}");
        let heard_started = heard(&payload, &runs_it);
        assert!(
            matches!(&heard_started, Some((7, Heard::Event(_, kind))) if *kind == started(1, Some("welcome"))),
            "{heard_started:?}"
        );
        // A process that does not run the kind hears the event, unnamed.
        let heard_elsewhere = heard(&payload, &Jobs::new());
        assert!(
            matches!(&heard_elsewhere, Some((7, Heard::Event(_, kind))) if *kind == started(1, None)),
            "{heard_elsewhere:?}"
        );
        // As the retry's statement adds it to a `queued` (see `jobs/sql.rs`).
        let queued = r#"{"j": "welcome", "k": "queued", "o": 7, "t": 42}"#;
        let heard_queued = heard(queued, &runs_it);
        assert!(
            matches!(
                &heard_queued,
                Some((
                    7,
                    Heard::Event(
                        _,
                        EventKind::Queued {
                            job: Some("welcome")
                        }
                    )
                ))
            ),
            "{heard_queued:?}"
        );
        let unknown = r#"{"j": "send_sms", "k": "queued", "o": 7, "t": 42}"#;
        let heard_unknown = heard(unknown, &runs_it);
        assert!(
            matches!(
                &heard_unknown,
                Some((7, Heard::Event(_, EventKind::Queued { job: None })))
            ),
            "{heard_unknown:?}"
        );
        // Unnamed, the payload carries no key for it.
        assert!(!event(7, 42, &started(1, None)).unwrap().contains(r#""j""#));
    }

    #[test]
    fn events_and_ends_cross_intact_with_their_sender() {
        let started = EventKind::Started {
            attempt: 2,
            job: None,
        };
        let payload = event(7, 42, &started).unwrap();
        let heard_started = heard(&payload, &Jobs::new());
        assert!(
            matches!(&heard_started, Some((7, Heard::Event(task, kind))) if task.get() == 42 && *kind == started),
            "{heard_started:?}"
        );
        let progress = EventKind::Progress {
            fraction: Some(0.5),
            message: Some("half".to_owned()),
        };
        let payload = event(7, 42, &progress).unwrap();
        let heard_progress = heard(&payload, &Jobs::new());
        assert!(
            matches!(&heard_progress, Some((7, Heard::Event(_, kind))) if *kind == progress),
            "{heard_progress:?}"
        );
        let limit = Duration::from_millis(1_500);
        let timed_out = TaskStatus::TimedOut { attempts: 3, limit };
        let payload = finished(7, 42, &timed_out);
        match heard(&payload, &Jobs::new()) {
            Some((
                7,
                Heard::Final(
                    task,
                    TaskStatus::TimedOut {
                        attempts: 3,
                        limit: l,
                    },
                ),
            )) => {
                assert_eq!((task.get(), l), (42, limit));
            }
            other => panic!("{other:?}"),
        }
        let payload = event(7, 42, &EventKind::Queued { job: None }).unwrap();
        let heard_queued = heard(&payload, &Jobs::new());
        assert!(
            matches!(
                &heard_queued,
                Some((7, Heard::Event(_, EventKind::Queued { job: None })))
            ),
            "{heard_queued:?}"
        );
        assert!(heard("not json", &Jobs::new()).is_none());
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let message = "é".repeat(5_000);
        let progress = EventKind::Progress {
            fraction: None,
            message: Some(message),
        };
        let payload = event(1, 2, &progress).unwrap();
        assert!(payload.len() < 8_000, "{}", payload.len());
        // Control characters take six bytes each in JSON.
        let progress = EventKind::Progress {
            fraction: None,
            message: Some("\u{1}".repeat(5_000)),
        };
        let payload = event(1, 2, &progress).unwrap();
        assert!(payload.len() < 8_000, "{}", payload.len());
        assert!(payload.len() > 1_500, "{}", payload.len());
    }

    #[test]
    fn events_are_bundled_in_order_into_payloads_that_fit() {
        let events: Vec<String> = (0..1_000)
            .map(|task| event(7, task, &started(1, None)).unwrap())
            .collect();
        let payloads = bundle(&events);
        assert!(payloads.len() < 10, "{} payloads", payloads.len());
        assert!(payloads.iter().all(|payload| payload.len() <= PAYLOAD));
        let tasks: Vec<u64> = payloads
            .iter()
            .flat_map(|payload| payload.lines())
            .map(|line| match heard(line, &Jobs::new()) {
                Some((7, Heard::Event(task, kind))) if kind == started(1, None) => task.get(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tasks, (0..1_000).collect::<Vec<_>>());
        // Long errors (cut to 2,000 bytes each) split a bundle; none is lost.
        let failed = TaskStatus::Failed {
            attempts: 1,
            error: TaskError::from_message("x".repeat(5_000)),
        };
        let mut events = vec![events[0].clone(); 2];
        events.splice(1..1, (0..5).map(|task| finished(7, task, &failed)));
        let payloads = bundle(&events);
        assert_eq!(payloads.len(), 2, "{payloads:?}");
        assert!(payloads.iter().all(|payload| payload.len() <= PAYLOAD));
        let lines: usize = payloads.iter().map(|payload| payload.lines().count()).sum();
        assert_eq!(lines, 7);
        assert!(bundle(&[]).is_empty());
    }
}
