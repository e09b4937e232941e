//! Regression tests for the hardened core: user code outside a task's
//! future cannot take a worker down, a retry that cannot be scheduled is
//! still accounted for, per-task event streams always end, extreme settings
//! build, places are given back and counted where the documentation says,
//! and tasks start in id order. Every wait is bounded, so a broken queue
//! fails in seconds instead of hanging.

mod bounds;
mod extreme_settings;
mod start_order;
mod streams;
mod timers;
mod user_panics;

use std::time::Duration;

use etiquette_core::Decorum;
use tokio::time::sleep;

use crate::support::{Gate, InFlight, receive_n, signals, within};

/// Polls `condition` until it holds, a millisecond apart, within the bound.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Adds `limit` tasks held at a gate, checks that all of them run at once,
/// then lets them finish: the queue still has its `limit` slots.
async fn still_runs(decorum: &Decorum, limit: usize) {
    let (gate, in_flight) = (Gate::closed(), InFlight::default());
    let (entered, mut entries) = signals();
    let mut handles = Vec::new();
    for index in 0..limit {
        let (gate, in_flight, entered) = (gate.clone(), in_flight.clone(), entered.clone());
        let task = async move {
            let _inside = in_flight.enter();
            entered.send(index).unwrap();
            gate.pass().await;
        };
        let handle = within("a place for a follow-up task", decorum.add_task(task)).await;
        handles.push(handle.expect("the queue accepts a follow-up task"));
    }
    receive_n(&mut entries, limit, "every follow-up task to start").await;
    assert_eq!(in_flight.now(), limit, "{limit} tasks run at once");
    gate.open();
    for handle in handles {
        within("a follow-up task's outcome", handle.outcome())
            .await
            .expect("the follow-up task succeeds");
    }
}
