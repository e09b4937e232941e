//! A one-shot, many-listener signal: set once, observed by any number of
//! waiters.
//!
//! Every task carries one (its cancel request), so it must cost nothing
//! until somebody waits: a flag plus an `event_listener::Event`, which does
//! not allocate until its first listener. `CancellationToken` allocates and
//! locks on creation and on every wait, which showed in the benchmarks.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

use event_listener::Event;

pub(crate) struct Signal {
    fired: AtomicBool,
    event: Event,
}

impl Signal {
    pub(crate) const fn new() -> Self {
        Self {
            fired: AtomicBool::new(false),
            event: Event::new(),
        }
    }

    /// Sets the signal and wakes every waiter; later calls do nothing.
    pub(crate) fn fire(&self) {
        if !self.fired.swap(true, SeqCst) {
            self.event.notify(usize::MAX);
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(SeqCst)
    }

    /// Resolves once the signal is set.
    pub(crate) async fn fired(&self) {
        loop {
            if self.is_fired() {
                return;
            }
            // Listen, then check again: a `fire` between the first check and
            // the listen would otherwise be missed.
            let listener = self.event.listen();
            if self.is_fired() {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn every_waiter_sees_the_signal_whenever_it_fires() {
        for _ in 0..200 {
            let signal = Arc::new(Signal::new());
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    let signal = signal.clone();
                    std::thread::spawn(move || futures_executor::block_on(signal.fired()))
                })
                .collect();
            signal.fire();
            signal.fire();
            for waiter in waiters {
                waiter.join().unwrap();
            }
            assert!(signal.is_fired());
        }
    }
}
