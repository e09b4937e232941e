//! Trivial tasks per second through etiquette and through a hand-written
//! `tokio::spawn` + `Semaphore`, side by side in one process; prints one
//! line per case. Used by `bench/load.sh`; the criterion bench
//! (`cargo bench -p etiquette-core`) measures the same with statistics.
//!
//! Run with: `cargo run --release -p etiquette-core --example throughput`
//!
//! `throughput once <etiquette|spawn> <limit> <n>` runs a single case once
//! and prints nothing: `bench/instructions.sh` counts its instructions.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

#[path = "../benches/shared/mod.rs"]
mod shared;
use shared::{queue, runtime};

const N: u64 = 100_000;
const ROUNDS: usize = 5;

async fn etiquette(limit: usize, n: u64) -> Duration {
    let start = Instant::now();
    let etiquette = queue(limit, 4096);
    let decorum = etiquette.decorum();
    for i in 0..n {
        decorum
            .add_task(async move {
                black_box(i);
            })
            .await
            .unwrap();
    }
    assert_eq!(etiquette.release().await.completed, n);
    start.elapsed()
}

async fn spawn_semaphore(limit: usize, n: u64) -> Duration {
    let start = Instant::now();
    let semaphore = Arc::new(Semaphore::new(limit));
    for i in 0..n {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            black_box(i);
            drop(permit);
        });
    }
    let _all = semaphore.acquire_many(limit as u32).await.unwrap();
    start.elapsed()
}

fn per_second(best: Duration) -> f64 {
    N as f64 / best.as_secs_f64()
}

fn main() {
    let runtime = runtime();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [once, case, limit, n] = args.as_slice()
        && once == "once"
    {
        let (limit, n) = (limit.parse().unwrap(), n.parse().unwrap());
        runtime.block_on(async {
            match case.as_str() {
                "etiquette" => etiquette(limit, n).await,
                "spawn" => spawn_semaphore(limit, n).await,
                other => panic!("unknown case {other}: etiquette or spawn"),
            }
        });
        return;
    }
    runtime.block_on(async {
        for limit in [1, 16, 1024] {
            // Interleaved rounds, best of each, so drift hits both alike.
            let (mut ours, mut naive) = (Duration::MAX, Duration::MAX);
            for _ in 0..ROUNDS {
                ours = ours.min(etiquette(limit, N).await);
                naive = naive.min(spawn_semaphore(limit, N).await);
            }
            println!(
                "limit={limit} n={N} etiquette_per_s={:.0} spawn_semaphore_per_s={:.0} ratio={:.2}",
                per_second(ours),
                per_second(naive),
                naive.as_secs_f64() / ours.as_secs_f64()
            );
        }
    });
}
