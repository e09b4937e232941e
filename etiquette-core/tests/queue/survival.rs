//! What a second review of the hardened core found: a resumed stream is
//! owed its final event, a release dropped half-way still lets a dropped
//! queue end its streams, and a runtime dropped while a panic unwinds ends
//! quietly. Plus a stress of everything at once. What it found of panics in
//! what runs around a task is in `panics_around_tasks.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use etiquette_core::{Builder, EventKind, RetryPolicy};

use crate::support::{Gate, within};

/// Default event_buffer(0): a client that saw its task's last event before
/// disconnecting, and resumes with that id once the task finished while no
/// one was subscribed, is owed the final event (it has an id of its own).
#[tokio::test]
async fn a_stream_resumed_after_the_tasks_last_progress_gets_its_final_event() {
    let etiquette = Builder::new().max_concurrent_tasks(1).build().unwrap();
    let decorum = etiquette.decorum();
    let gate = Arc::new(Gate::closed());
    let g = gate.clone();
    let handle = decorum
        .task_with_context(move |ctx| {
            let g = g.clone();
            async move {
                ctx.progress(0.5);
                g.pass().await;
            }
        })
        .add()
        .await
        .unwrap();
    let mut sub = decorum.subscribe_task_now(handle.id(), None).unwrap();
    // Wait for progress
    let last = loop {
        let event = within("the task's progress event", sub.next())
            .await
            .expect("the stream goes on until the task's end")
            .expect("no lag");
        if matches!(event.kind, EventKind::Progress { .. }) {
            break event.id;
        }
    };
    drop(sub); // client disconnects
    gate.open();
    let _ = within("outcome", handle.outcome()).await;
    let mut sub = decorum.subscribe_task_now(handle.id(), Some(last)).unwrap();
    let mut got = Vec::new();
    while let Some(item) = within("resume", sub.next()).await {
        got.push(item);
    }
    assert!(
        got.iter()
            .any(|i| i.as_ref().is_ok_and(|e| e.kind.is_final())),
        "resumed stream ended without the final event"
    );
}

/// A release future dropped before it finished leaves intake closed; the
/// last handle dropped still releases the queue in the background, so the
/// workers stop and an all-task subscription ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_dropped_after_a_release_future_was_dropped_ends_its_streams() {
    let etiquette = Builder::new().max_concurrent_tasks(2).build().unwrap();
    let decorum = etiquette.decorum();
    let mut all = decorum.subscribe(None);
    let gate = Arc::new(Gate::closed());
    let g = gate.clone();
    let handle = decorum
        .add_task(async move { g.pass().await })
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_millis(20), etiquette.release()).await;
    assert!(r.is_err());
    drop(decorum);
    drop(etiquette);
    gate.open();
    let _ = within("outcome", handle.outcome()).await;
    drop(handle);
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while all.next().await.is_some() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "all-task subscription never ends after the queue is dropped"
    );
}

/// A runtime holding busy workers, dropped while some other panic unwinds
/// (a failing test, a crashing application): the workers' guards see the
/// unwinding, must not take it for a panic of their own, and must not
/// start replacements that the dying runtime drops in turn (which recursed
/// until the stack overflowed).
#[test]
fn a_runtime_dropped_while_a_panic_unwinds_ends_quietly() {
    let unwound = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let never = Arc::new(Gate::closed());
        let queue = runtime.block_on(async {
            let etiquette = Builder::new().max_concurrent_tasks(2).build().unwrap();
            let decorum = etiquette.decorum();
            let (started, mut starts) = crate::support::signals();
            for index in 0..4 {
                decorum
                    .add_task(never.held_task(index, &started))
                    .await
                    .unwrap();
            }
            crate::support::receive_n(&mut starts, 2, "two workers running a task").await;
            etiquette
        });
        let _dropped_while_unwinding = (runtime, queue);
        panic!("a failure with a busy queue on the runtime");
    });
    assert!(unwound.is_err(), "the closure panicked as planned");
}

/// Stress: parking/retiring workers, compaction, cancels racing claims,
/// zero-backoff retries, bursts with idle gaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn everything_settles_under_stress() {
    for round in 0..10u64 {
        let etiquette = Builder::new()
            .max_concurrent_tasks(1 + (round as usize % 5) * 7)
            .queue_capacity(1 + (round as usize % 3) * 100)
            .event_buffer(if round % 2 == 0 { 0 } else { 8 })
            .build()
            .unwrap();
        let inflight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let max = 1 + (round as usize % 5) * 7;
        let mut joins = Vec::new();
        for p in 0..8u64 {
            let decorum = etiquette.decorum();
            let inflight = inflight.clone();
            let peak = peak.clone();
            joins.push(tokio::spawn(async move {
                let mut handles = Vec::new();
                let mut subs = Vec::new();
                for i in 0..300u64 {
                    let seed = p * 1000 + i + round * 77;
                    let inflight = inflight.clone();
                    let peak = peak.clone();
                    let mut n = 0u32;
                    let h = decorum
                        .task(move || {
                            n += 1;
                            let k = n;
                            let inflight = inflight.clone();
                            let peak = peak.clone();
                            async move {
                                struct G(Arc<AtomicUsize>);
                                impl Drop for G {
                                    fn drop(&mut self) {
                                        self.0.fetch_sub(1, SeqCst);
                                    }
                                }
                                let now = inflight.fetch_add(1, SeqCst) + 1;
                                let _g = G(inflight.clone());
                                peak.fetch_max(now, SeqCst);
                                if seed % 3 == 0 {
                                    tokio::task::yield_now().await;
                                }
                                if seed % 4 == 0 && k < 3 {
                                    Err("again")
                                } else {
                                    Ok(())
                                }
                            }
                        })
                        .retry(RetryPolicy::exponential(3, Duration::from_micros(1)))
                        .add()
                        .await
                        .unwrap();
                    if seed % 11 == 0 {
                        subs.push(decorum.subscribe_task_now(h.id(), None).unwrap());
                    }
                    if seed % 5 == 0 {
                        h.cancel_now();
                    }
                    handles.push(h);
                    if i % 50 == 0 {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                for h in &handles {
                    let _ = within("outcome", h.outcome()).await;
                }
                for mut s in subs {
                    let mut finals = 0;
                    while let Some(item) = within("sub", s.next()).await {
                        if item.is_ok_and(|event| event.kind.is_final()) {
                            finals += 1;
                        }
                    }
                    assert_eq!(finals, 1, "task subscription finals");
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        let report = within("release", etiquette.release()).await;
        assert_eq!(
            report.accepted,
            report.completed + report.failed + report.cancelled,
            "{report:?}"
        );
        assert!(
            peak.load(SeqCst) <= max,
            "peak {} max {max}",
            peak.load(SeqCst)
        );
        let stats = etiquette.stats();
        assert_eq!(
            (stats.queued, stats.retrying, stats.running),
            (0, 0, 0),
            "{stats:?}"
        );
    }
}
