//! Small helpers shared by the suites: bounded waits, synchronisation, and
//! the setup most tests begin with.

use std::future::{Future, IntoFuture};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use etiquette_core::{
    Builder, Decorum, Etiquette, Lagged, ReleaseReport, Subscription, TaskEvent, TaskHandle,
};
use futures_util::future::{Either, select};
use tokio::sync::{Semaphore, mpsc};

/// How long a test waits for anything before it fails: far longer than any
/// wait here takes when the queue works (the whole suite runs in about a
/// second), short enough that broken accounting fails the test in seconds
/// instead of hanging it until CI's guard.
pub(crate) const BOUND: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test if it takes longer than [`BOUND`].
/// `what` names what was awaited, for the failure message: "the release of
/// the queue", "the outcome of task 7".
///
/// Every wait of a test on a release, an outcome, a stream or a channel goes
/// through this (or [`within_for`]), on whatever executor runs the test:
///
/// - Within a tokio runtime it is `tokio::time::timeout`, so the runtime
///   needs its time driver. On a paused clock the bound is virtual: a test
///   that hangs (the runtime idle, nothing left to wake it) fails at once,
///   as the clock jumps to the bound.
/// - Anywhere else (the `futures` thread pool suite, or a bare
///   `futures_executor::block_on`) it races `future` against a
///   `futures_timer::Delay`, which runs on a timer thread of its own.
pub(crate) async fn within<F: IntoFuture>(what: &str, future: F) -> F::Output {
    within_for(BOUND, what, future).await
}

/// [`within`] with a bound of its own, for the few waits that legitimately
/// last [`BOUND`] or longer on the paused clock (a retry schedule, a release
/// deadline). On the paused clock a longer bound costs nothing: a hang
/// still fails at once.
pub(crate) async fn within_for<F: IntoFuture>(bound: Duration, what: &str, future: F) -> F::Output {
    let future = future.into_future();
    if tokio::runtime::Handle::try_current().is_ok() {
        if let Ok(output) = tokio::time::timeout(bound, future).await {
            return output;
        }
    } else if let Either::Left((output, _)) =
        select(pin!(future), futures_timer::Delay::new(bound)).await
    {
        return output;
    }
    panic!("timed out after {bound:?} waiting for {what}");
}

/// Tasks wait at the gate until the test opens it.
#[derive(Clone, Debug)]
pub(crate) struct Gate(Arc<Semaphore>);

impl Gate {
    pub(crate) fn closed() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }

    pub(crate) async fn pass(&self) {
        // Closing the semaphore is how the gate opens: every waiter returns.
        let _ = self.0.acquire().await;
    }

    pub(crate) fn open(&self) {
        self.0.close();
    }

    /// A task that sends `index` through `started` as it starts, then waits
    /// at this gate: it holds its worker, and the test knows when.
    pub(crate) fn held_task(
        &self,
        index: usize,
        started: &mpsc::UnboundedSender<usize>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (gate, started) = (self.clone(), started.clone());
        async move {
            started.send(index).unwrap();
            gate.pass().await;
        }
    }
}

/// Adds a task held at `gate` and returns its handle once it has started:
/// one worker is taken until the test opens the gate.
pub(crate) async fn hold_a_worker(decorum: &Decorum, gate: &Gate) -> TaskHandle {
    let (started, mut starts) = signals();
    let handle = decorum
        .add_task(gate.held_task(0, &started))
        .await
        .expect("the queue accepts the task to hold a worker");
    receive_n(&mut starts, 1, "the start of the task held at the gate").await;
    handle
}

/// Releases the queue, within [`BOUND`]; `after` says what it ran, for the
/// failure message ("the release of the queue after {after}").
pub(crate) async fn release_after(etiquette: &Etiquette, after: &str) -> ReleaseReport {
    let what = format!("the release of the queue after {after}");
    within(&what, etiquette.release()).await
}

/// Builds the queue `builder` describes and takes a `Decorum` of it, as
/// most tests begin.
pub(crate) fn build(builder: Builder) -> (Etiquette, Decorum) {
    let etiquette = builder.build().expect("the test's settings build");
    let decorum = etiquette.decorum();
    (etiquette, decorum)
}

/// Every item of `subscription` until it ends, within [`BOUND`]; `what`
/// names the stream for the failure message.
pub(crate) async fn drain(
    what: &str,
    mut subscription: Subscription,
) -> Vec<Result<TaskEvent, Lagged>> {
    within(what, async {
        let mut seen = Vec::new();
        while let Some(item) = subscription.next().await {
            seen.push(item);
        }
        seen
    })
    .await
}

/// A task factory whose first attempt fails with "flaky" and whose later
/// ones succeed: one retry, then success.
pub(crate) fn flaky_once()
-> impl FnMut() -> std::future::Ready<Result<(), &'static str>> + Send + 'static {
    let mut attempts = 0;
    move || {
        attempts += 1;
        std::future::ready(if attempts == 1 { Err("flaky") } else { Ok(()) })
    }
}

/// Counts tasks in flight and remembers the highest count seen.
#[derive(Clone, Debug, Default)]
pub(crate) struct InFlight {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl InFlight {
    pub(crate) fn enter(&self) -> InFlightGuard {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.max.fetch_max(now, SeqCst);
        InFlightGuard(self.now.clone())
    }

    pub(crate) fn now(&self) -> usize {
        self.now.load(SeqCst)
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(SeqCst)
    }
}

pub(crate) struct InFlightGuard(Arc<AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// Tasks report events (their index) to the test through this.
pub(crate) fn signals() -> (mpsc::UnboundedSender<usize>, mpsc::UnboundedReceiver<usize>) {
    mpsc::unbounded_channel()
}

/// Receives `n` signals, within [`BOUND`]; `what` names them for the
/// failure message ("the start of 16 tasks").
pub(crate) async fn receive_n(
    rx: &mut mpsc::UnboundedReceiver<usize>,
    n: usize,
    what: &str,
) -> Vec<usize> {
    within(what, async {
        let mut got = Vec::with_capacity(n);
        for _ in 0..n {
            got.push(rx.recv().await.expect("a task dropped its signal sender"));
        }
        got
    })
    .await
}

/// Yields once to the executor, whichever it is.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}
