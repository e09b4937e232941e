//! The README's "API in one screen", compiled and run as a doc-test of
//! etiquette-core (see `lib.rs`); a test checks the README shows this file.
//!
//!     cargo run -p etiquette-core --example api_in_one_screen

// --8<-- [start:api]
use std::time::{Duration, SystemTime};

use etiquette_core::{AddTaskError, Etiquette, Job, OnFull, RetryPolicy, TaskContext};
use serde::{Deserialize, Serialize};

/// A typed job: its fields are its arguments, stored as they are by a
/// durable backend; the in-memory queue runs the value itself.
#[derive(Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

impl Job for SendEmail {
    const NAME: &'static str = "send_email"; // stable: stored with each job
    type Error = std::io::Error; // anything `Into<BoxError>`

    async fn run(&self, cx: TaskContext) -> Result<(), Self::Error> {
        cx.report(0.5, format!("sending to {}", self.to)); // a progress event
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // At start-up, inside the runtime the tasks should run on.
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(16) // tasks running at once (default 16)
        .queue_capacity(1024) // tasks waiting, scheduled or retrying (default 1024)
        .on_full(OnFull::Wait) // add waits for room; Reject: AddTaskError::Full at once
        .retry_policy(RetryPolicy::exponential(3, Duration::from_secs(1))) // the default
        .task_timeout(Duration::from_secs(60)) // per attempt, unless a task sets its own
        .event_buffer(1024) // events kept for Last-Event-ID resumption
        .build()?; // BuildError: zero/oversized settings, no runtime, no timer

    // In handlers: a cheap Clone handle (the adapters extract it for you).
    let decorum = etiquette.decorum();
    let email = SendEmail {
        to: "ada@example.com".into(),
    };
    let task = decorum
        .job(email) // or .task(|| async { .. }) for a closure, made once per attempt
        .retry(RetryPolicy::exponential(5, Duration::from_millis(10)).jitter(0.2))
        .timeout(Duration::from_secs(10)) // per attempt; a timed-out attempt retries
        .priority(-1) // lower starts first (default 0)
        .unique_key("welcome:ada") // while it lives, adding the key again returns it
        .add()
        .await?;
    let later = decorum
        .task(|| async { println!("trial ends tomorrow") })
        .delay(Duration::from_millis(50)) // or .run_at(SystemTime)
        .add()
        .await?;
    decorum.add_task(async { println!("one-shot") }).await?; // a future: one attempt

    // Handles: status, outcome, cancel; found again by id while retained.
    println!("{} is {}", task.id(), task.status().await?); // queued, scheduled, running, retrying, succeeded, ...
    let again = decorum.find(task.id()).await?.expect("retained");
    let mut events = decorum
        .subscribe_task(task.id(), None)
        .await?
        .expect("known"); // or subscribe(..)
    again.await?; // Err(TaskError): failed, panicked, timed out, cancelled
    while let Some(event) = events.next().await {
        println!("event {:?}", event?.kind); // Queued, Started, Progress, .., Succeeded
    }
    assert!(
        decorum
            .job(SendEmail {
                to: "bob@example.com".into()
            })
            .add()
            .await
            .is_ok()
    );
    match decorum
        .task(|| async {})
        .run_at(SystemTime::now())
        .try_add()
    {
        Ok(_) | Err(AddTaskError::Full) => {} // 503 + Retry-After in every adapter
        Err(error) => return Err(error.into()), // Released: shutting down, 503
    }
    println!("{:?}", decorum.stats()); // queued, scheduled, retrying, running, accepted, ...

    // At the stop signal: intake closes, what was accepted runs, or is cancelled at the deadline.
    let report = etiquette.release_timeout(Duration::from_secs(30)).await;
    assert_eq!(
        report.accepted,
        report.completed + report.failed + report.cancelled
    );
    assert!(later.status().await?.is_finished());
    Ok(())
}
// --8<-- [end:api]
