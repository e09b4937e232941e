//! Counters, gauges and histograms through the `metrics` facade (feature
//! `metrics`); without the feature every call here compiles to nothing.
//!
//! | name | kind | meaning |
//! |------|------|---------|
//! | `etiquette_tasks_accepted_total` | counter | tasks accepted |
//! | `etiquette_tasks_completed_total` | counter | tasks that succeeded |
//! | `etiquette_tasks_failed_total` | counter | tasks that failed for good (errors, panics, time-outs) |
//! | `etiquette_tasks_timed_out_total` | counter | of those, time-outs |
//! | `etiquette_tasks_retried_total` | counter | retries scheduled |
//! | `etiquette_tasks_cancelled_total` | counter | tasks cancelled |
//! | `etiquette_tasks_queued` | gauge | tasks waiting for a slot |
//! | `etiquette_tasks_running` | gauge | tasks running |
//! | `etiquette_task_queue_wait_seconds` | histogram | from acceptance to first start |
//! | `etiquette_task_run_seconds` | histogram | each attempt's run time |
//!
//! Every series carries the label `queue`, the builder's
//! [`name`](crate::Builder::name). Handles are registered when the queue is
//! built: install the recorder (e.g. a Prometheus exporter) before that.

#[cfg(feature = "metrics")]
pub(crate) use enabled::*;

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::*;

#[cfg(feature = "metrics")]
mod enabled {
    use std::time::{Duration, Instant};

    use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

    pub(crate) struct Metrics {
        accepted: Counter,
        completed: Counter,
        failed: Counter,
        timed_out: Counter,
        retried: Counter,
        cancelled: Counter,
        queued: Gauge,
        running: Gauge,
        queue_wait: Histogram,
        run_time: Histogram,
    }

    /// When something started, for the histograms.
    #[derive(Clone, Copy)]
    pub(crate) struct Stamp(Instant);

    impl Stamp {
        pub(crate) fn now() -> Self {
            Self(Instant::now())
        }

        fn elapsed(self) -> Duration {
            self.0.elapsed()
        }
    }

    impl Metrics {
        pub(crate) fn new(queue: &'static str) -> Self {
            Self {
                accepted: counter!("etiquette_tasks_accepted_total", "queue" => queue),
                completed: counter!("etiquette_tasks_completed_total", "queue" => queue),
                failed: counter!("etiquette_tasks_failed_total", "queue" => queue),
                timed_out: counter!("etiquette_tasks_timed_out_total", "queue" => queue),
                retried: counter!("etiquette_tasks_retried_total", "queue" => queue),
                cancelled: counter!("etiquette_tasks_cancelled_total", "queue" => queue),
                queued: gauge!("etiquette_tasks_queued", "queue" => queue),
                running: gauge!("etiquette_tasks_running", "queue" => queue),
                queue_wait: histogram!("etiquette_task_queue_wait_seconds", "queue" => queue),
                run_time: histogram!("etiquette_task_run_seconds", "queue" => queue),
            }
        }

        pub(crate) fn accepted(&self, queued: impl FnOnce() -> usize) {
            self.accepted.increment(1);
            self.queued.set(queued() as f64);
        }

        pub(crate) fn started(
            &self,
            accepted_at: Option<Stamp>,
            queued: impl FnOnce() -> usize,
            running: u64,
        ) {
            if let Some(accepted_at) = accepted_at {
                self.queue_wait.record(accepted_at.elapsed());
            }
            self.queued.set(queued() as f64);
            self.running.set(running as f64);
        }

        pub(crate) fn attempt_ended(&self, started_at: Stamp) {
            self.run_time.record(started_at.elapsed());
        }

        pub(crate) fn retried(&self, running: u64) {
            self.retried.increment(1);
            self.running.set(running as f64);
        }

        /// Counts a final status, as the queue's counters do.
        pub(crate) fn settled(&self, status: &crate::TaskStatus, running: u64) {
            use crate::TaskStatus;
            match status {
                TaskStatus::Succeeded { .. } => self.completed.increment(1),
                TaskStatus::TimedOut { .. } => {
                    self.failed.increment(1);
                    self.timed_out.increment(1);
                }
                TaskStatus::Failed { .. } => self.failed.increment(1),
                _ => self.cancelled.increment(1),
            }
            self.running.set(running as f64);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    pub(crate) struct Metrics;

    #[derive(Clone, Copy)]
    pub(crate) struct Stamp;

    impl Stamp {
        pub(crate) fn now() -> Self {
            Self
        }
    }

    impl Metrics {
        pub(crate) fn new(_queue: &'static str) -> Self {
            Self
        }
        // The backlog length is only measured when metrics are on.
        pub(crate) fn accepted(&self, _queued: impl FnOnce() -> usize) {}
        pub(crate) fn started(
            &self,
            _accepted_at: Option<Stamp>,
            _queued: impl FnOnce() -> usize,
            _running: u64,
        ) {
        }
        pub(crate) fn attempt_ended(&self, _started_at: Stamp) {}
        pub(crate) fn retried(&self, _running: u64) {}
        pub(crate) fn settled(&self, _status: &crate::TaskStatus, _running: u64) {}
    }
}
