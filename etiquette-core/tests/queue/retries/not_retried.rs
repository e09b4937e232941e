//! What is never retried: an error the policy's predicate calls permanent,
//! and a panic.

use etiquette_core::{Builder, RetryPolicy};

use super::{Attempts, Permanent, SECOND, secs};
use crate::support::{build, within};

#[tokio::test(start_paused = true)]
async fn permanent_errors_fail_at_once() {
    let etiquette = Builder::new()
        .retry_policy(
            RetryPolicy::exponential(5, SECOND).retry_if(|error| !error.is::<Permanent>()),
        )
        .build()
        .unwrap();
    let attempts = Attempts::new();
    let handle = etiquette
        .decorum()
        .task(attempts.recording(|_| async { Err::<(), _>(Permanent) }))
        .add()
        .await
        .unwrap();
    let outcome = within("the outcome of a permanent failure", handle.outcome()).await;
    let error = outcome.unwrap_err();
    assert_eq!(error.to_string(), "address rejected");
    assert_eq!(attempts.times(), secs(&[0]));
    assert_eq!(etiquette.stats().retried, 0);
}

#[tokio::test(start_paused = true)]
async fn panics_are_never_retried() {
    let (_etiquette, decorum) = build(Builder::new().max_concurrent_tasks(1));
    let attempts = Attempts::new();
    let handle = decorum
        .task(attempts.recording(|_| async { panic_now() }))
        .add()
        .await
        .unwrap();
    let outcome = within("the outcome of a panicking task", handle.outcome()).await;
    assert!(outcome.unwrap_err().is_panic());
    assert_eq!(attempts.times(), secs(&[0]));
}

fn panic_now() {
    panic!("bug");
}
