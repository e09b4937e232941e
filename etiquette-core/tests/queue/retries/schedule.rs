//! When attempts run: the configured schedule, the default and queue-wide
//! policies, jitter, and the slot left free during a backoff.

use std::sync::{Arc, Mutex};

use etiquette_core::{Builder, Etiquette, RetryPolicy, TaskStatus};

use super::{Attempts, SECOND, Transient, add_retried, secs, transient_once, within_schedule};
use crate::support::{build, within};

#[tokio::test(start_paused = true)]
async fn attempts_follow_the_configured_schedule_with_no_final_sleep() {
    let (etiquette, decorum) = build(Builder::new().max_concurrent_tasks(4));
    let attempts = Attempts::new();
    let handle = add_retried(
        &decorum,
        RetryPolicy::exponential(4, SECOND),
        attempts.always_failing(),
    )
    .await;

    let outcome =
        within_schedule("the outcome of a task failing 4 attempts", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert_eq!(attempts.times(), secs(&[0, 1, 3, 7]));
    assert_eq!(
        attempts.start.elapsed(),
        secs(&[7])[0],
        "a sleep followed the last attempt"
    );
    assert!(error.task_error().unwrap().is::<Transient>());
    assert!(matches!(
        handle.status_now(),
        TaskStatus::Failed { attempts: 4, .. }
    ));
    let stats = etiquette.stats();
    assert_eq!((stats.failed, stats.retried), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn the_default_policy_is_three_attempts_one_then_two_seconds_apart() {
    let (_etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let attempts = Attempts::new();
    let handle = decorum.task(attempts.always_failing()).add().await.unwrap();
    let outcome = within("the outcome of a task failing 3 attempts", handle.outcome()).await;
    assert!(outcome.is_err());
    assert_eq!(attempts.times(), secs(&[0, 1, 3]));
}

#[tokio::test(start_paused = true)]
async fn the_queue_wide_policy_applies_unless_a_task_overrides_it() {
    let (_etiquette, decorum) =
        build(Builder::new().retry_policy(RetryPolicy::exponential(2, 5 * SECOND)));
    let (queue_wide, own) = (Attempts::new(), Attempts::new());
    let first = decorum
        .task(queue_wide.always_failing())
        .add()
        .await
        .unwrap();
    let second = add_retried(&decorum, RetryPolicy::never(), own.always_failing()).await;
    let _ = within_schedule(
        "the outcomes of both failing tasks",
        futures_util::future::join(first.outcome(), second.outcome()),
    )
    .await;
    assert_eq!(queue_wide.times(), secs(&[0, 5]));
    assert_eq!(own.times(), secs(&[0]));
}

#[tokio::test(start_paused = true)]
async fn jitter_shortens_each_wait_within_its_fraction() {
    let etiquette = Etiquette::initiate(64).unwrap();
    let decorum = etiquette.decorum();
    let mut all = Vec::new();
    for _ in 0..50 {
        let attempts = Attempts::new();
        add_retried(
            &decorum,
            RetryPolicy::exponential(3, 4 * SECOND).jitter(0.5),
            attempts.always_failing(),
        )
        .await;
        all.push(attempts);
    }
    within_schedule(
        "the release of the queue after 50 tasks retried with jitter",
        etiquette.release(),
    )
    .await;
    let mut distinct = std::collections::BTreeSet::new();
    for attempts in all {
        let at = attempts.times();
        let (first_wait, second_wait) = (at[1] - at[0], at[2] - at[1]);
        assert!(
            (2 * SECOND..=4 * SECOND).contains(&first_wait),
            "{first_wait:?}"
        );
        assert!(
            (4 * SECOND..=8 * SECOND).contains(&second_wait),
            "{second_wait:?}"
        );
        distinct.insert(first_wait);
    }
    assert!(distinct.len() > 1, "jitter drew the same wait 50 times");
}

#[tokio::test(start_paused = true)]
async fn the_slot_is_free_during_backoff() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let decorum = etiquette.decorum();
    let timeline = Attempts::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let flaky = decorum
        .task(timeline.recording(move |attempt| {
            log.lock().unwrap().push(format!("flaky {attempt}"));
            transient_once(attempt)
        }))
        .retry(RetryPolicy::exponential(2, 10 * SECOND))
        .add()
        .await
        .unwrap();
    let log = seen.clone();
    let start = timeline.start;
    let other = decorum
        .add_task(async move {
            log.lock()
                .unwrap()
                .push(format!("other at {:?}", start.elapsed()));
        })
        .await
        .unwrap();
    within("the outcome of the other task", other.outcome())
        .await
        .unwrap();
    assert!(
        matches!(flaky.status_now(), TaskStatus::Retrying { attempt: 1, backoff, .. } if backoff == 10 * SECOND)
    );
    within_schedule("the outcome of the flaky task's retry", flaky.outcome())
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["flaky 1", "other at 0ns", "flaky 2"],
        "at limit 1 the other task ran while the flaky one waited"
    );
    assert_eq!(timeline.times(), secs(&[0, 10]));
}
