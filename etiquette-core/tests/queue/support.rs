//! Small synchronisation helpers shared by the suites.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context, Poll};

use tokio::sync::{Semaphore, mpsc};

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

pub(crate) async fn receive_n(rx: &mut mpsc::UnboundedReceiver<usize>, n: usize) -> Vec<usize> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(rx.recv().await.expect("a task dropped its signal sender"));
    }
    got
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
