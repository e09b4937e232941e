//! Time limits: a task's own limit cancels each attempt and is retried,
//! the queue-wide one applies to plain tasks.

use std::sync::{Arc, Mutex};

use etiquette_core::{Builder, Etiquette, RetryPolicy, TaskStatus};
use tokio::time::{Instant, sleep};

use super::{Attempts, SECOND, secs, within_schedule};
use crate::support::{release_after, within};

/// Sets its flag when dropped: shows an attempt was really stopped.
struct DropFlag(Arc<Mutex<u32>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        *self.0.lock().unwrap() += 1;
    }
}

#[tokio::test(start_paused = true)]
async fn time_limits_cancel_attempts_and_are_retried() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let attempts = Attempts::new();
    let dropped = Arc::new(Mutex::new(0));
    let flag = dropped.clone();
    let handle = etiquette
        .decorum()
        .task(attempts.recording(move |_| {
            let guard = DropFlag(flag.clone());
            async move {
                let _guard = guard;
                sleep(60 * SECOND).await;
            }
        }))
        .retry(RetryPolicy::exponential(2, SECOND))
        .timeout(2 * SECOND)
        .add()
        .await
        .unwrap();
    let outcome = within_schedule("the outcome of a task timing out twice", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert!(error.is_timeout());
    // 2 s attempt, 1 s backoff, 2 s attempt: over at 5 s, not 60.
    assert_eq!(attempts.times(), secs(&[0, 3]));
    assert_eq!(attempts.start.elapsed(), 5 * SECOND);
    assert_eq!(
        *dropped.lock().unwrap(),
        2,
        "each timed-out attempt was dropped"
    );
    assert!(
        matches!(handle.status_now(), TaskStatus::TimedOut { attempts: 2, limit } if limit == 2 * SECOND)
    );
    let stats = etiquette.stats();
    assert_eq!((stats.failed, stats.timed_out, stats.retried), (1, 1, 1));
}

#[tokio::test(start_paused = true)]
async fn queue_wide_time_limit_applies_to_plain_tasks() {
    let etiquette = Builder::new().task_timeout(3 * SECOND).build().unwrap();
    let start = Instant::now();
    let handle = etiquette
        .decorum()
        .add_task(async { sleep(60 * SECOND).await })
        .await
        .unwrap();
    let outcome = within("the outcome of a task timing out", handle.outcome()).await;
    assert!(outcome.unwrap_err().is_timeout());
    assert_eq!(start.elapsed(), 3 * SECOND);
    let report = release_after(&etiquette, "a task timed out").await;
    assert_eq!((report.failed, report.timed_out), (1, 1));
}
