//! Sustained overload: requests arrive at 60,000 per second for 10 seconds,
//! each handing off a 100 ms task, at most 16 running at once. Prints what is
//! pending at the end and the process's memory (peak RSS).
//!
//! * `naive`: `tokio::spawn` per request; the task waits for a semaphore
//!   permit, so the backlog is unbounded;
//! * `etiquette`: `try_add_task` on a queue of 64; the excess is refused at
//!   once (a web adapter answers 503 + `Retry-After`).
//!
//! Run with: `cargo run --release -p etiquette-core --example overload -- naive`
//! (or `-- etiquette`). Linux only: memory is read from `/proc/self/statm`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

#[path = "../benches/shared/mod.rs"]
mod shared;

const RATE_PER_MS: u64 = 60;
const LOAD: Duration = Duration::from_secs(10);
const TASK: Duration = Duration::from_millis(100);
const LIMIT: usize = 16;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "etiquette".into());
    let peak = Arc::new(AtomicU64::new(rss_bytes()));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let (mut accepted, mut refused) = (0_u64, 0_u64);
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    let start = Instant::now();
    let pending = match mode.as_str() {
        "naive" => {
            let semaphore = Arc::new(Semaphore::new(LIMIT));
            let finished = Arc::new(AtomicU64::new(0));
            while start.elapsed() < LOAD {
                ticks.tick().await;
                for _ in 0..RATE_PER_MS {
                    let (semaphore, finished) = (semaphore.clone(), finished.clone());
                    tokio::spawn(async move {
                        let _permit = semaphore.acquire().await.unwrap();
                        tokio::time::sleep(TASK).await;
                        finished.fetch_add(1, Relaxed);
                    });
                    accepted += 1;
                }
            }
            accepted - finished.load(Relaxed)
        }
        _ => {
            let etiquette = shared::queue(LIMIT, 64);
            let decorum = etiquette.decorum();
            while start.elapsed() < LOAD {
                ticks.tick().await;
                for _ in 0..RATE_PER_MS {
                    match decorum.try_add_task(async { tokio::time::sleep(TASK).await }) {
                        Ok(_) => accepted += 1,
                        Err(_) => refused += 1,
                    }
                }
            }
            let stats = etiquette.stats();
            stats.queued as u64 + stats.running
        }
    };
    peak.fetch_max(rss_bytes(), Relaxed);
    sampler.abort();
    let drain = pending as f64 * TASK.as_secs_f64() / LIMIT as f64;
    println!(
        "mode={mode} accepted={accepted} refused={refused} pending={pending} \
         peak_rss_mib={:.1} drain_estimate_s={drain:.1}",
        mib(peak.load(Relaxed))
    );
}
