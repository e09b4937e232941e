//! What a second review of the hardened core found: the queue survives
//! panics in what runs around a task (the spawner's timer), a resumed
//! stream is owed its final event, and a release dropped half-way still
//! lets a dropped queue end its streams. Plus a stress of everything at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use etiquette_core::{Builder, Decorum, Etiquette, EventKind, RetryPolicy};

use crate::support::{Gate, build, within};

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
    let mut sub = decorum.subscribe_task(handle.id(), None).unwrap();
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
    let mut sub = decorum.subscribe_task(handle.id(), Some(last)).unwrap();
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

/// The time limit whose timers break: the tasks of the queues below get it.
const BROKEN_LIMIT: Duration = Duration::from_secs(3600);

/// A spawner on the current tokio runtime whose timers of
/// [`BROKEN_LIMIT`] (the tests' time limit) panic, when made or when
/// polled; its other timers work, so the builder accepts it.
#[derive(Debug)]
struct BrokenTimer {
    runtime: tokio::runtime::Handle,
    when_made: bool,
}

impl BrokenTimer {
    fn when_polled() -> Self {
        Self {
            runtime: tokio::runtime::Handle::current(),
            when_made: false,
        }
    }

    fn when_made() -> Self {
        Self {
            when_made: true,
            ..Self::when_polled()
        }
    }

    /// A queue of one worker on this spawner whose tasks are limited to
    /// [`BROKEN_LIMIT`]: each attempt's timer is a broken one.
    fn queue(self) -> (Etiquette, Decorum) {
        build(
            Builder::new()
                .max_concurrent_tasks(1)
                .spawner(self)
                .task_timeout(BROKEN_LIMIT),
        )
    }
}

impl etiquette_core::Spawner for BrokenTimer {
    fn spawn(
        &self,
        future: etiquette_core::BoxFuture<()>,
    ) -> Result<(), etiquette_core::SpawnError> {
        drop(self.runtime.spawn(future));
        Ok(())
    }
    fn sleep(&self, duration: Duration) -> etiquette_core::BoxFuture<()> {
        if duration != BROKEN_LIMIT {
            let _entered = self.runtime.enter();
            return Box::pin(tokio::time::sleep(duration));
        }
        assert!(!self.when_made, "no timer for you");
        Box::pin(async { panic!("timer broke") })
    }
}

/// A panic while polling the spawner's timer (user code) is the task's
/// panic; the worker goes on, and the next queued task runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_panicking_when_polled_fails_its_task_and_spares_the_worker() {
    let (etiquette, decorum) = BrokenTimer::when_polled().queue();
    let first = decorum
        .add_task(async { std::future::pending::<()>().await })
        .await
        .unwrap();
    let second = decorum.task(|| async {}).no_timeout().add().await.unwrap();
    let out1 = within("first", first.outcome()).await;
    let out2 = within(
        "the next task's outcome: the worker survived",
        second.outcome(),
    )
    .await;
    eprintln!(
        "second outcome within 2s: {out2:?}; stats {:?}",
        etiquette.stats()
    );
    let report = within("release", etiquette.release()).await;
    assert!(
        out1.as_ref().unwrap_err().is_panic(),
        "timer panic not reported as task panic"
    );
    assert!(out2.is_ok(), "the next task succeeds: {out2:?}");
    assert_eq!(
        (report.failed, report.panicked, report.completed),
        (1, 1, 1)
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
                        subs.push(decorum.subscribe_task(h.id(), None).unwrap());
                    }
                    if seed % 5 == 0 {
                        h.cancel();
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

/// Timer creation panics: the task's panic, before any attempt exists; the
/// factory's captures, dropped with it, panic too, under guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_never_started_for_want_of_a_timer_is_dropped_under_guard() {
    let (_etiquette, decorum) = BrokenTimer::when_made().queue();
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb in drop");
        }
    }
    let first = decorum
        .task(|| {
            let b = Bomb;
            async move {
                let _b = b;
            }
        })
        .add()
        .await
        .unwrap();
    let out1 = within("first", first.outcome()).await;
    let second = decorum.task(|| async {}).no_timeout().add().await.unwrap();
    let out2 = within(
        "the next task's outcome: the worker survived",
        second.outcome(),
    )
    .await;
    assert!(out1.as_ref().unwrap_err().is_panic(), "{out1:?}");
    assert!(out2.is_ok(), "{out2:?}");
}

/// A tracing subscriber whose `enter` panics, once, for the queue's `task`
/// span: code the queue runs around a task, not the task's own.
#[derive(Default)]
struct BrokenSubscriber {
    next: std::sync::atomic::AtomicU64,
    names: std::sync::Mutex<std::collections::HashMap<u64, &'static str>>,
    armed: std::sync::atomic::AtomicBool,
}

impl tracing::Subscriber for BrokenSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.next.fetch_add(1, SeqCst) + 1;
        self.names
            .lock()
            .unwrap()
            .insert(id, span.metadata().name());
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, span: &tracing::span::Id) {
        let name = self.names.lock().unwrap().get(&span.into_u64()).copied();
        if name == Some("task") && self.armed.swap(false, SeqCst) {
            panic!("the tracing subscriber broke");
        }
    }
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A panic in code run around a task (here the tracing subscriber entering
/// the task's span) fails that task as panicked, and the worker it killed
/// is replaced: the next task runs.
#[test]
fn a_panic_around_a_task_fails_it_and_the_pool_goes_on() {
    let subscriber = BrokenSubscriber::default();
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let etiquette = Builder::new().max_concurrent_tasks(1).build().unwrap();
        let decorum = etiquette.decorum();
        // tracing caches each callsite's interest process-wide, and other
        // tests on other threads may have it cached without this thread's
        // subscriber: until the subscriber sees the task's span, rebuild
        // the cache and try again (the pool must go on either way).
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= 50, "the subscriber never saw a task's span");
            tracing::callsite::rebuild_interest_cache();
            tracing::dispatcher::get_default(|dispatch| {
                dispatch
                    .downcast_ref::<BrokenSubscriber>()
                    .expect("the broken subscriber is the default")
                    .armed
                    .store(true, SeqCst);
            });
            // Both in line before the worker runs: the second waits behind
            // the first, so only a replacement worker can run it.
            let first = decorum.add_task(async {}).await.unwrap();
            let second = decorum.add_task(async {}).await.unwrap();
            let outcome = within("the outcome of the task whose span broke", first.outcome()).await;
            within(
                "the next task's outcome: a worker took over",
                second.outcome(),
            )
            .await
            .expect("the next task succeeds");
            if outcome.as_ref().is_err_and(|error| error.is_panic()) {
                break;
            }
            assert!(outcome.is_ok(), "{outcome:?}");
        }
        let report = within("the release", etiquette.release()).await;
        assert_eq!(
            (report.accepted, report.completed, report.panicked),
            (2 * tries, 2 * tries - 1, 1)
        );
    });
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
