//! A retry that cannot be scheduled (a backoff as long as `Duration::MAX`)
//! is still accounted for, and a runtime without a timer is refused.

use std::time::Duration;

use etiquette_core::{BuildError, Builder, Etiquette, RetryPolicy, TaskStatus};

use super::until;
use crate::support::{build, within};

fn unschedulable() -> RetryPolicy {
    RetryPolicy::exponential(u32::MAX, Duration::MAX)
        .max_backoff(Duration::MAX)
        .jitter(0.5)
}

#[test]
fn the_longest_backoffs_saturate_instead_of_panicking() {
    let retries = [1, 2, 64, u32::MAX];
    let units = [0.0, 0.5, 0.999, f64::NAN];
    for (policy, cap) in [
        (unschedulable(), Duration::MAX),
        (
            unschedulable().max_backoff(Duration::from_secs(3600)),
            Duration::from_secs(3600),
        ),
    ] {
        for retry in retries {
            for unit in units {
                let delay = policy.delay_before_retry(retry, unit);
                // At most the cap, and jitter of 0.5 shortens it by half at
                // most.
                assert!(
                    delay <= cap && delay >= cap / 2,
                    "retry {retry}, unit {unit}: {delay:?}"
                );
            }
            assert_eq!(
                policy.delay_before_retry(retry, 0.0),
                cap,
                "no jitter drawn"
            );
        }
    }
}

/// Both with and without jitter (without, the full `Duration::MAX` wait
/// once overflowed as it was computed), the task fails, waits to retry on a
/// timer that never fires in time, and the release deadline cancels it.
#[tokio::test(start_paused = true)]
async fn tasks_with_an_endless_backoff_wait_to_retry_and_are_cancelled_at_the_deadline() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let mut handles = Vec::new();
    for policy in [unschedulable(), unschedulable().jitter(0.0)] {
        let handle = decorum
            .task(|| async { Err::<(), _>("down") })
            .retry(policy)
            .add()
            .await
            .unwrap();
        handles.push(handle);
    }
    until("both tasks to wait for their retry", || {
        handles
            .iter()
            .all(|handle| matches!(handle.status_now(), TaskStatus::Retrying { attempt: 1, .. }))
    })
    .await;

    let report = within(
        "release_timeout(1 s)",
        etiquette.release_timeout(Duration::from_secs(1)),
    )
    .await;
    for handle in &handles {
        assert!(matches!(handle.status_now(), TaskStatus::Cancelled));
        let outcome = within("the outcome", handle.outcome()).await;
        assert!(outcome.unwrap_err().is_cancelled());
    }
    assert_eq!(etiquette.stats().running, 0);
    assert_eq!(
        (report.accepted, report.retried, report.cancelled),
        (2, 2, 2),
        "{report}"
    );
}

#[test]
fn a_runtime_without_a_timer_is_refused_at_build() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let built = runtime.block_on(async { Etiquette::builder().build() });
    let error = built.expect_err("a queue without timers is refused");
    assert_eq!(error, BuildError::NoTimer);
    assert!(error.to_string().contains("enable_time"), "{error}");
    let built = runtime.block_on(async { Etiquette::initiate(1) });
    assert_eq!(built.unwrap_err(), BuildError::NoTimer);
}
