//! The scenario proptest generates: the queue's settings, a sequence of
//! operations (the tasks added and what they do, cancels, gates opened,
//! subscriptions, waits) and how the queue is released.

use etiquette_core::OnFull;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;

use super::{
    ERRORS_WHOSE_DISPLAY_PANICS, FACTORY_AND_PREDICATE_PANICS, FUTURES_WHOSE_DROP_PANICS,
    HUGE_BACKOFFS, USER_GATES,
};

#[derive(Debug, Clone)]
pub(super) struct Scenario {
    pub(super) settings: Settings,
    pub(super) ops: Vec<Op>,
    pub(super) end: End,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) max_concurrent_tasks: usize,
    pub(super) queue_capacity: usize,
    pub(super) on_full: OnFull,
    /// In ticks.
    pub(super) task_timeout: Option<u32>,
    pub(super) event_buffer: usize,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Add {
        body: Body,
        via: Via,
    },
    AddRetryable {
        kind: Retry,
        attempts: u32,
        /// In ticks.
        backoff: u32,
        via: Via,
    },
    Cancel(Index),
    OpenGate(usize),
    Subscribe(Index),
    /// Lets `n` ticks pass; 0 yields once.
    Wait(u32),
}

/// `add_task`/`add` (waiting for a place under `OnFull::Wait`, for a bounded
/// time, as a handler with a request timeout would) or
/// `try_add_task`/`try_add`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Await,
    Try,
}

/// What a one-shot task's future does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Body {
    Instant,
    Yields(u8),
    /// Sleeps that many ticks.
    Sleep(u32),
    Error,
    Panic,
    /// Waits until this gate opens.
    Gated(usize),
    Never,
    /// Waits at the gate (or for ever) with a guard whose drop panics
    /// unless the wait ended: dropping the pending future panics.
    DropPanics(Option<usize>),
    /// Returns an error whose `Display` panics.
    Unprintable,
}

/// What a retryable task's attempts do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Fails that many attempts, then succeeds.
    FailThenSucceed(u32),
    AlwaysFail,
    /// Each attempt never finishes; the task's own limit (in ticks) cuts it.
    TimesOut(u32),
    /// Fails until the factory panics when asked for this attempt.
    FactoryPanics(u32),
    /// Fails; its `retry_if` predicate panics (at least 2 attempts, so
    /// that the predicate is asked).
    PredicatePanics,
    /// Fails with an error whose `Display` panics.
    Unprintable,
    /// Fails, then waits `Duration::MAX` before retrying.
    HugeBackoff,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum End {
    /// Opens every gate, cancels the tasks that could never finish, then
    /// `release()`.
    Release,
    /// `release_timeout(after ticks)`, with the gates opened or left shut.
    ReleaseTimeout { after: u32, open_gates: bool },
}

pub(super) fn scenario() -> impl Strategy<Value = Scenario> {
    settings()
        .prop_flat_map(|settings| {
            (
                Just(settings),
                prop::collection::vec(op(settings), 0..=30),
                end(),
            )
        })
        .prop_map(|(settings, ops, end)| Scenario { settings, ops, end })
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        1usize..=4,
        1usize..=6,
        prop_oneof![Just(OnFull::Wait), Just(OnFull::Reject)],
        prop::option::weighted(0.3, 1u32..=8),
        prop_oneof![Just(0usize), Just(256usize)],
    )
        .prop_map(
            |(max_concurrent_tasks, queue_capacity, on_full, task_timeout, event_buffer)| {
                Settings {
                    max_concurrent_tasks,
                    queue_capacity,
                    on_full,
                    task_timeout,
                    event_buffer,
                }
            },
        )
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![Just(Via::Await), Just(Via::Try)]
}

fn op(settings: Settings) -> impl Strategy<Value = Op> {
    let retryable =
        (retry(settings), 1u32..=4, 1u32..=4, via()).prop_map(|(kind, attempts, backoff, via)| {
            let attempts = match kind {
                Retry::PredicatePanics | Retry::HugeBackoff => attempts.max(2),
                _ => attempts,
            };
            Op::AddRetryable {
                kind,
                attempts,
                backoff,
                via,
            }
        });
    Union::new_weighted(vec![
        (
            6,
            (body(settings), via())
                .prop_map(|(body, via)| Op::Add { body, via })
                .boxed(),
        ),
        (4, retryable.boxed()),
        (2, any::<Index>().prop_map(Op::Cancel).boxed()),
        (1, (0..USER_GATES).prop_map(Op::OpenGate).boxed()),
        (2, any::<Index>().prop_map(Op::Subscribe).boxed()),
        (2, (0u32..=3).prop_map(Op::Wait).boxed()),
    ])
}

fn body(settings: Settings) -> impl Strategy<Value = Body> {
    let mut choices = vec![
        (3, Just(Body::Instant).boxed()),
        (2, (1u8..=4).prop_map(Body::Yields).boxed()),
        (3, (1u32..=5).prop_map(Body::Sleep).boxed()),
        (2, Just(Body::Error).boxed()),
        (2, Just(Body::Panic).boxed()),
        (3, (0..USER_GATES).prop_map(Body::Gated).boxed()),
        (1, Just(Body::Never).boxed()),
    ];
    if FUTURES_WHOSE_DROP_PANICS {
        choices.push((
            2,
            prop::option::of(0..USER_GATES)
                .prop_map(Body::DropPanics)
                .boxed(),
        ));
    }
    // Only with a history of events, which renders every final event: the
    // queue then must render the error, whoever else listens.
    if ERRORS_WHOSE_DISPLAY_PANICS && settings.event_buffer > 0 {
        choices.push((1, Just(Body::Unprintable).boxed()));
    }
    Union::new_weighted(choices)
}

fn retry(settings: Settings) -> impl Strategy<Value = Retry> {
    let mut choices = vec![
        (3, (0u32..=4).prop_map(Retry::FailThenSucceed).boxed()),
        (1, Just(Retry::AlwaysFail).boxed()),
        (1, (1u32..=4).prop_map(Retry::TimesOut).boxed()),
    ];
    if FACTORY_AND_PREDICATE_PANICS {
        choices.push((1, (1u32..=4).prop_map(Retry::FactoryPanics).boxed()));
        choices.push((1, Just(Retry::PredicatePanics).boxed()));
    }
    if ERRORS_WHOSE_DISPLAY_PANICS && settings.event_buffer > 0 {
        choices.push((1, Just(Retry::Unprintable).boxed()));
    }
    if HUGE_BACKOFFS {
        choices.push((1, Just(Retry::HugeBackoff).boxed()));
    }
    Union::new_weighted(choices)
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Release),
        (0u32..=20, any::<bool>())
            .prop_map(|(after, open_gates)| End::ReleaseTimeout { after, open_gates }),
    ]
}
