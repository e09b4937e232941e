//! What a Prometheus scrape shows after a known workload.

use std::time::Duration;

use etiquette_core::{Builder, RetryPolicy};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::support::{build, flaky_once, within_for};

/// The value of one series in Prometheus text output.
fn value(output: &str, series: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn a_known_workload_shows_in_prometheus_output() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let prometheus = recorder.handle();
    // The local recorder is per thread: one thread runs everything.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (etiquette, decorum) = build(
                Builder::new()
                    .name("emails")
                    .max_concurrent_tasks(2)
                    .task_timeout(Duration::from_secs(5)),
            );
            for _ in 0..5 {
                decorum.add_task(async {}).await.unwrap();
            }
            for _ in 0..2 {
                decorum
                    .add_task(async { Err::<(), _>("bounced") })
                    .await
                    .unwrap();
            }
            decorum
                .add_task(async { tokio::time::sleep(Duration::from_secs(60)).await })
                .await
                .unwrap();
            decorum
                .task(flaky_once())
                .retry(RetryPolicy::exponential(2, Duration::from_secs(1)))
                .add()
                .await
                .unwrap();
            // The task of 60 s times out at 5 s (virtual).
            within_for(
                Duration::from_secs(30),
                "the release of the queue after a known workload",
                etiquette.release(),
            )
            .await;
        });
    });

    let output = prometheus.render();
    let series = |name: &str| value(&output, &format!("{name}{{queue=\"emails\"}}"));
    assert_eq!(
        series("etiquette_tasks_accepted_total"),
        Some(9.0),
        "{output}"
    );
    assert_eq!(
        series("etiquette_tasks_completed_total"),
        Some(6.0),
        "{output}"
    );
    assert_eq!(
        series("etiquette_tasks_failed_total"),
        Some(3.0),
        "{output}"
    );
    assert_eq!(
        series("etiquette_tasks_timed_out_total"),
        Some(1.0),
        "{output}"
    );
    assert_eq!(
        series("etiquette_tasks_retried_total"),
        Some(1.0),
        "{output}"
    );
    assert_eq!(series("etiquette_tasks_running"), Some(0.0), "{output}");
    assert_eq!(series("etiquette_tasks_queued"), Some(0.0), "{output}");
    // Ten attempts in all: nine tasks, one of them twice.
    assert_eq!(
        series("etiquette_task_run_seconds_count"),
        Some(10.0),
        "{output}"
    );
    assert_eq!(
        series("etiquette_task_queue_wait_seconds_count"),
        Some(9.0),
        "{output}"
    );
    // Measured on the wall clock (the test's paused clock does not reach it).
    assert!(
        series("etiquette_task_run_seconds_sum").unwrap() > 0.0,
        "{output}"
    );
}
