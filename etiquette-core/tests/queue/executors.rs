//! Stamps the behaviour suite onto each executor.

use std::time::Duration;

use etiquette_core::{BoxFuture, Builder, SpawnError, Spawner};

/// A `futures` thread pool, to prove the core needs no tokio runtime.
#[derive(Debug)]
struct ThreadPool(futures_executor::ThreadPool);

impl Spawner for ThreadPool {
    fn spawn(&self, future: BoxFuture<()>) -> Result<(), SpawnError> {
        self.0.spawn_ok(future);
        Ok(())
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<()> {
        Box::pin(futures_timer::Delay::new(duration))
    }
}

fn on_thread_pool() -> Builder {
    let pool = futures_executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .unwrap();
    Builder::new().spawner(ThreadPool(pool))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_tokio {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    crate::behaviour::$name(etiquette_core::Builder::new()).await;
                }
            )*
        }
        mod on_futures_thread_pool {
            $(
                #[test]
                fn $name() {
                    futures_executor::block_on(crate::behaviour::$name(super::on_thread_pool()));
                }
            )*
        }
    };
}

suite!(
    bound_holds_at_limit_1,
    bound_holds_at_limit_16,
    bound_holds_at_limit_1024,
    tasks_start_in_fifo_order,
    full_queue_applies_backpressure,
    reject_policy_fails_fast,
    nothing_is_accepted_after_release,
    adder_waiting_for_room_is_told_of_release,
    panics_and_errors_are_isolated_and_counted,
    release_runs_every_accepted_task,
    release_timeout_cancels_and_counts_the_rest,
    release_timeout_does_not_cancel_what_finishes,
    no_accepted_task_is_ever_lost,
    dropping_every_handle_still_runs_accepted_tasks,
);
