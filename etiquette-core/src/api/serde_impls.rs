//! JSON-friendly forms of task ids, statuses, events and stats (feature
//! `serde`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{EventKind, Stats, TaskEvent, TaskId, TaskStatus};

/// Milliseconds since the Unix epoch (negative before it), as JavaScript's
/// `Date` takes them.
pub(crate) fn unix_millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl Serialize for TaskId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Self::from)
    }
}

/// A flat object: `status` (see [`TaskStatus::name`]) plus the fields that
/// apply, e.g. `{"status":"retrying","attempts":1,"backoff_ms":1000,"error":"…"}`.
/// `attempts` is the same field in every state: the attempts started so
/// far, the one running included.
impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("status", self.name())?;
        match self {
            Self::Queued | Self::Cancelled => {}
            Self::Scheduled { run_at } => {
                map.serialize_entry("run_at_ms", &unix_millis(*run_at))?
            }
            Self::Running { attempt } => map.serialize_entry("attempts", attempt)?,
            Self::Retrying {
                attempt,
                backoff,
                error,
            } => {
                map.serialize_entry("attempts", attempt)?;
                map.serialize_entry("backoff_ms", &backoff.as_millis())?;
                map.serialize_entry("error", &error.to_string())?;
            }
            Self::Succeeded { attempts } => map.serialize_entry("attempts", attempts)?,
            Self::Failed { attempts, error } => {
                map.serialize_entry("attempts", attempts)?;
                map.serialize_entry("error", &error.to_string())?;
            }
            Self::TimedOut { attempts, limit } => {
                map.serialize_entry("attempts", attempts)?;
                map.serialize_entry("limit_ms", &limit.as_millis())?;
            }
        }
        map.end()
    }
}

/// A flat object: `id`, `task`, `event` (see [`EventKind::name`]) plus the
/// fields that apply, e.g.
/// `{"id":7,"task":3,"event":"progress","fraction":0.5,"message":"resizing"}`
/// or `{"id":8,"task":4,"event":"started","attempt":1,"job":"send_welcome"}`.
/// A field the event leaves out (`None`) is not written: a closure task's
/// `queued`, `scheduled` and `started` have no `job`.
impl Serialize for TaskEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("task", &self.task)?;
        map.serialize_entry("event", self.kind.name())?;
        match &self.kind {
            EventKind::Queued { .. } | EventKind::Cancelled => {}
            EventKind::Scheduled { run_at, .. } => {
                map.serialize_entry("run_at_ms", &unix_millis(*run_at))?;
            }
            EventKind::Started { attempt, .. } => map.serialize_entry("attempt", attempt)?,
            EventKind::Progress { fraction, message } => {
                if let Some(fraction) = fraction {
                    map.serialize_entry("fraction", fraction)?;
                }
                if let Some(message) = message {
                    map.serialize_entry("message", message)?;
                }
            }
            EventKind::Retrying {
                attempt,
                backoff,
                error,
            } => {
                map.serialize_entry("attempt", attempt)?;
                map.serialize_entry("backoff_ms", &backoff.as_millis())?;
                map.serialize_entry("error", error)?;
            }
            EventKind::Succeeded { attempts } | EventKind::TimedOut { attempts } => {
                map.serialize_entry("attempts", attempts)?;
            }
            EventKind::Failed { attempts, error } => {
                map.serialize_entry("attempts", attempts)?;
                map.serialize_entry("error", error)?;
            }
        }
        if let Some(job) = self.kind.job() {
            map.serialize_entry("job", job)?;
        }
        map.end()
    }
}

/// A flat object of every gauge and counter, named as the fields are:
/// `{"queued":0,"scheduled":0,"retrying":0,"running":2,"accepted":10,…}`.
impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(12))?;
        map.serialize_entry("queued", &self.queued)?;
        map.serialize_entry("scheduled", &self.scheduled)?;
        map.serialize_entry("retrying", &self.retrying)?;
        map.serialize_entry("running", &self.running)?;
        map.serialize_entry("accepted", &self.accepted)?;
        map.serialize_entry("completed", &self.completed)?;
        map.serialize_entry("failed", &self.failed)?;
        map.serialize_entry("panicked", &self.panicked)?;
        map.serialize_entry("timed_out", &self.timed_out)?;
        map.serialize_entry("retried", &self.retried)?;
        map.serialize_entry("cancelled", &self.cancelled)?;
        map.serialize_entry("handed_back", &self.handed_back)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{TaskError, TaskId, TaskStatus};

    #[test]
    fn statuses_serialize_flat() {
        let json = |status: &TaskStatus| serde_json::to_string(status).unwrap();
        assert_eq!(json(&TaskStatus::Queued), r#"{"status":"queued"}"#);
        assert_eq!(
            json(&TaskStatus::Retrying {
                attempt: 1,
                backoff: Duration::from_secs(2),
                error: TaskError::timed_out(Duration::from_millis(1500)),
            }),
            r#"{"status":"retrying","attempts":1,"backoff_ms":2000,"error":"timed out after 1.5s"}"#
        );
        assert_eq!(
            json(&TaskStatus::Succeeded { attempts: 3 }),
            r#"{"status":"succeeded","attempts":3}"#
        );
    }

    #[test]
    fn events_serialize_flat() {
        let event = crate::TaskEvent {
            id: 7,
            task: TaskId::new(3),
            kind: crate::EventKind::Progress {
                fraction: Some(0.5),
                message: Some("resizing".into()),
            },
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":7,"task":3,"event":"progress","fraction":0.5,"message":"resizing"}"#
        );
    }

    #[test]
    fn events_name_their_job_when_it_is_known() {
        let event = |kind| crate::TaskEvent {
            id: 8,
            task: TaskId::new(4),
            kind,
        };
        let started = |job| crate::EventKind::Started { attempt: 1, job };
        assert_eq!(
            serde_json::to_string(&event(started(Some("send_welcome")))).unwrap(),
            r#"{"id":8,"task":4,"event":"started","attempt":1,"job":"send_welcome"}"#
        );
        assert_eq!(
            serde_json::to_string(&event(started(None))).unwrap(),
            r#"{"id":8,"task":4,"event":"started","attempt":1}"#
        );
        let queued = crate::EventKind::Queued {
            job: Some("send_welcome"),
        };
        assert_eq!(
            serde_json::to_string(&event(queued)).unwrap(),
            r#"{"id":8,"task":4,"event":"queued","job":"send_welcome"}"#
        );
    }

    #[test]
    fn stats_serialize_flat() {
        let stats = crate::Stats {
            running: 2,
            accepted: 10,
            completed: 7,
            ..crate::Stats::default()
        };
        assert_eq!(
            serde_json::to_string(&stats).unwrap(),
            r#"{"queued":0,"scheduled":0,"retrying":0,"running":2,"accepted":10,"completed":7,"failed":0,"panicked":0,"timed_out":0,"retried":0,"cancelled":0,"handed_back":0}"#
        );
    }

    #[test]
    fn ids_are_plain_numbers() {
        let id: TaskId = serde_json::from_str("42").unwrap();
        assert_eq!(id.get(), 42);
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
    }
}
