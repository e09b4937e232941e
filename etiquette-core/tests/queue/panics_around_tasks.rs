//! Panics in what the queue runs around a task, not in the task's own
//! code: the spawner's timer, made or polled, and a tracing subscriber
//! entering the task's span. Each fails that task as panicked, and the pool
//! goes on.

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use etiquette_core::{Builder, Decorum, Etiquette};

use crate::support::{build, within};

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

/// A tracing subscriber that, while armed, panics for the queue's `task`
/// span: as it enters it (once), or as it makes it. Code the queue runs
/// around a task, not the task's own.
#[derive(Default)]
struct BrokenSubscriber {
    next: std::sync::atomic::AtomicU64,
    names: std::sync::Mutex<std::collections::HashMap<u64, &'static str>>,
    armed: std::sync::atomic::AtomicBool,
    /// Whether it breaks making the span, rather than entering it.
    when_made: bool,
}

impl tracing::Subscriber for BrokenSubscriber {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let name = span.metadata().name();
        if name == "task" && self.when_made && self.armed.load(SeqCst) {
            panic!("the tracing subscriber broke making a span");
        }
        let id = self.next.fetch_add(1, SeqCst) + 1;
        self.names.lock().unwrap().insert(id, name);
        tracing::span::Id::from_u64(id)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, span: &tracing::span::Id) {
        let name = self.names.lock().unwrap().get(&span.into_u64()).copied();
        if name == Some("task") && !self.when_made && self.armed.swap(false, SeqCst) {
            panic!("the tracing subscriber broke");
        }
    }
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A current-thread runtime on a paused clock, for tests that set a
/// subscriber of their own on their thread.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Arms or disarms the current thread's [`BrokenSubscriber`].
fn arm(armed: bool) {
    tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<BrokenSubscriber>()
            .expect("the broken subscriber is the default")
            .armed
            .store(armed, SeqCst);
    });
}

/// A panic in code run around a task (here the tracing subscriber entering
/// the task's span) fails that task as panicked, and the worker it killed
/// is replaced: the next task runs.
#[test]
fn a_panic_around_a_task_fails_it_and_the_pool_goes_on() {
    let subscriber = BrokenSubscriber::default();
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = paused_runtime();
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
            arm(true);
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

/// A task whose job cannot be made (the subscriber panics making its span)
/// was never accepted, scheduled or not: the panic reaches its adder, and
/// the counts and the place are as if it had never been added, so that a
/// release still ends.
#[test]
fn a_task_that_cannot_be_made_is_never_counted_scheduled_or_accepted() {
    let subscriber = BrokenSubscriber {
        when_made: true,
        ..BrokenSubscriber::default()
    };
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = paused_runtime();
    runtime.block_on(async {
        let etiquette = Builder::new()
            .queue_capacity(1)
            .on_full(etiquette_core::OnFull::Reject)
            .build()
            .unwrap();
        let decorum = etiquette.decorum();
        let add = || {
            decorum
                .task(|| async {})
                .delay(Duration::from_secs(60))
                .unique_key("reminder")
                .try_add()
        };
        // tracing caches each callsite's interest process-wide: until the
        // subscriber sees the task's span, cancel what was added, rebuild
        // the cache and try again.
        let mut tries = 0_u64;
        loop {
            tries += 1;
            assert!(tries <= 50, "the subscriber never saw a task's span");
            tracing::callsite::rebuild_interest_cache();
            arm(true);
            let adding = std::panic::catch_unwind(std::panic::AssertUnwindSafe(add));
            arm(false);
            match adding {
                Err(_broken) => break,
                Ok(added) => assert!(added.unwrap().cancel_now()),
            }
        }
        let stats = decorum.stats();
        assert_eq!(
            stats.scheduled, 0,
            "a task never made was counted scheduled"
        );
        assert_eq!(
            stats.accepted,
            tries - 1,
            "a task never made was counted accepted"
        );
        // Its place and its key are free.
        let next = add().expect("the place of the task never made is free");
        assert!(
            !next.was_duplicate(),
            "the key of the task never made is held"
        );
        assert!(next.cancel_now());
        within("the release", etiquette.release()).await;
    });
}
