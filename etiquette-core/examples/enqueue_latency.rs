//! The cost of one `add_task` call while the queue has room: p50 and p99
//! over 200,000 calls, with one producer and with two.
//!
//! Run with: `cargo run --release -p etiquette-core --example enqueue_latency`

use std::time::{Duration, Instant};

use etiquette_core::Decorum;

#[path = "../benches/shared/mod.rs"]
mod shared;
use shared::{queue, runtime};

const CALLS: usize = 200_000;

async fn produce(decorum: Decorum, calls: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        decorum.add_task(async {}).await.unwrap();
        samples.push(start.elapsed());
    }
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn main() {
    let runtime = runtime();
    runtime.block_on(async {
        for producers in [1, 2] {
            // Room for every call, so only the enqueue itself is measured.
            let etiquette = queue(16, CALLS);
            let handles: Vec<_> = (0..producers)
                .map(|_| tokio::spawn(produce(etiquette.decorum(), CALLS / producers)))
                .collect();
            let mut samples = Vec::new();
            for handle in handles {
                samples.extend(handle.await.unwrap());
            }
            etiquette.release().await;
            samples.sort_unstable();
            println!(
                "producers={producers} calls={CALLS} p50_ns={} p99_ns={}",
                percentile(&samples, 0.50).as_nanos(),
                percentile(&samples, 0.99).as_nanos()
            );
        }
    });
}
