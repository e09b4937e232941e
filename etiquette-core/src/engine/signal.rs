//! A signal with one waiter: a task's cancel request, set once by a handle
//! (or a release deadline) and awaited by whoever is running or parking the
//! task at the time; and an idle worker's parker, re-armed each time it
//! parks.
//!
//! Every task carries one, so it must cost nothing until it is used: a flag
//! and an `AtomicWaker`, which registers a waiter without a lock or an
//! allocation. A many-listener event would lock a shared list twice for
//! every task that awaits anything, and allocate on first use.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::Poll;

use futures_util::task::AtomicWaker;

pub(crate) struct Signal {
    fired: AtomicBool,
    waiter: AtomicWaker,
}

impl Signal {
    pub(crate) const fn new() -> Self {
        Self {
            fired: AtomicBool::new(false),
            waiter: AtomicWaker::new(),
        }
    }

    /// Clears the signal, so that it can be fired again.
    pub(crate) fn reset(&self) {
        self.fired.store(false, SeqCst);
    }

    /// Sets the signal and wakes the waiter; later calls do nothing.
    pub(crate) fn fire(&self) {
        if !self.fired.swap(true, SeqCst) {
            self.waiter.wake();
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(SeqCst)
    }

    /// Resolves once the signal is set. Only one future may wait at a time:
    /// a second one's registration replaces the first's.
    pub(crate) async fn fired(&self) {
        // A waiter that gives up must not leave its waker behind: it would
        // keep the waiting task's memory alive as long as the signal lives.
        struct Unregister<'a>(&'a AtomicWaker);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                drop(self.0.take());
            }
        }
        let _unregister = Unregister(&self.waiter);
        poll_fn(|cx| {
            if self.is_fired() {
                return Poll::Ready(());
            }
            // Register, then look again: a `fire` in between would be missed.
            self.waiter.register(cx.waker());
            if self.is_fired() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc::RecvTimeoutError;

    #[test]
    fn the_waiter_sees_the_signal_whenever_it_fires() {
        // A lost wake-up would leave the waiter blocked for ever: the test
        // waits for its word, not for the thread, so that it fails instead.
        const BOUND: std::time::Duration = std::time::Duration::from_secs(5);
        for _ in 0..2_000 {
            let signal = Arc::new(Signal::new());
            let (woken, wake) = std::sync::mpsc::channel();
            {
                let signal = signal.clone();
                std::thread::spawn(move || {
                    futures_executor::block_on(signal.fired());
                    woken.send(()).unwrap();
                });
            }
            signal.fire();
            signal.fire();
            match wake.recv_timeout(BOUND) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("timed out after {BOUND:?} waiting for the waiter to see the signal")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("the waiter panicked"),
            }
            assert!(signal.is_fired());
        }
    }
}
