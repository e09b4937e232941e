//! End-to-end throughput: add N tasks, then wait for all of them, at a given
//! concurrency limit. Each group measures etiquette side by side with the two
//! baselines a user would otherwise write:
//!
//! * `spawn_semaphore`: `tokio::spawn` per task, guarded by a `Semaphore`
//!   permit acquired before spawning (so the producer feels backpressure);
//! * `channel_tracker`: an mpsc channel, one dispatcher spawning each task
//!   under a permit, and a `TaskTracker` to wait for them.
//!
//! Run with: `cargo bench -p etiquette-core --bench throughput`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

mod shared;
use shared::{queue, runtime};

/// What each task does.
#[derive(Clone, Copy, Debug)]
enum Work {
    Trivial,
    Yield,
    SleepOneMs,
}

impl Work {
    async fn run(self, input: u64) {
        match self {
            Self::Trivial => {
                black_box(input);
            }
            Self::Yield => tokio::task::yield_now().await,
            Self::SleepOneMs => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn etiquette(limit: usize, n: u64, work: Work) {
    let etiquette = queue(limit, 4096);
    let decorum = etiquette.decorum();
    for i in 0..n {
        decorum.add_task(work.run(i)).await.unwrap();
    }
    let report = etiquette.release().await;
    assert_eq!(report.completed, n);
}

async fn spawn_semaphore(limit: usize, n: u64, work: Work) {
    let semaphore = Arc::new(Semaphore::new(limit));
    for i in 0..n {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        tokio::spawn(async move {
            work.run(i).await;
            drop(permit);
        });
    }
    let _all = semaphore.acquire_many(limit as u32).await.unwrap();
}

async fn channel_tracker(limit: usize, n: u64, work: Work) {
    let (tx, mut rx) = mpsc::channel::<u64>(4096);
    let tracker = TaskTracker::new();
    let semaphore = Arc::new(Semaphore::new(limit));
    let dispatcher = {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while let Some(i) = rx.recv().await {
                let permit = semaphore.clone().acquire_owned().await.unwrap();
                tracker.spawn(async move {
                    work.run(i).await;
                    drop(permit);
                });
            }
        })
    };
    for i in 0..n {
        tx.send(i).await.unwrap();
    }
    drop(tx);
    dispatcher.await.unwrap();
    tracker.close();
    tracker.wait().await;
}

fn group(c: &mut Criterion, name: &str, work: Work, cases: &[(usize, u64)]) {
    let runtime = runtime();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    for &(limit, n) in cases {
        group.throughput(Throughput::Elements(n));
        let parameter = format!("limit={limit}/n={n}");
        group.bench_function(BenchmarkId::new("etiquette", &parameter), |b| {
            b.to_async(&runtime).iter(|| etiquette(limit, n, work));
        });
        group.bench_function(BenchmarkId::new("spawn_semaphore", &parameter), |b| {
            b.to_async(&runtime)
                .iter(|| spawn_semaphore(limit, n, work));
        });
        group.bench_function(BenchmarkId::new("channel_tracker", &parameter), |b| {
            b.to_async(&runtime)
                .iter(|| channel_tracker(limit, n, work));
        });
    }
    group.finish();
}

fn trivial(c: &mut Criterion) {
    group(
        c,
        "trivial",
        Work::Trivial,
        &[
            (1, 100_000),
            (16, 100_000),
            (1024, 100_000),
            (16, 1_000_000),
            (1024, 1_000_000),
        ],
    );
}

fn awaiting(c: &mut Criterion) {
    group(c, "yield", Work::Yield, &[(1024, 100_000)]);
    group(c, "sleep_1ms", Work::SleepOneMs, &[(1024, 100_000)]);
}

criterion_group!(benches, trivial, awaiting);
criterion_main!(benches);
