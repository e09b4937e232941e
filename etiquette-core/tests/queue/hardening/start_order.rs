//! Tasks start in id order, even when added concurrently from many threads.

use std::sync::{Arc, Mutex};

use etiquette_core::Builder;

use crate::support::{Gate, build, hold_a_worker, within};

/// Four producers on threads of their own, released together, add tasks
/// to a queue whose one worker is held at a gate; returns the ids of those
/// tasks in the order they started.
async fn start_order_of_tasks_added_concurrently() -> Vec<u64> {
    const PRODUCERS: usize = 4;
    const EACH: usize = 2_500;
    let (etiquette, decorum) = build(
        Builder::new()
            .max_concurrent_tasks(1)
            .queue_capacity(PRODUCERS * EACH),
    );
    let gate = Gate::closed();
    let blocker = hold_a_worker(&decorum, &gate).await;

    let order = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(std::sync::Barrier::new(PRODUCERS));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let (decorum, order, ready) = (decorum.clone(), order.clone(), ready.clone());
            tokio::task::spawn_blocking(move || {
                ready.wait();
                for _ in 0..EACH {
                    let order = order.clone();
                    decorum
                        .task_with_context(move |context| {
                            order.lock().unwrap().push(context.id().get());
                            std::future::ready(())
                        })
                        .try_add()
                        .expect("room for every task");
                }
            })
        })
        .collect();
    for producer in producers {
        within("a producer", producer).await.unwrap();
    }
    gate.open();
    within("the gate task", blocker.outcome()).await.unwrap();
    let report = within("the release", etiquette.release()).await;
    assert_eq!(report.completed, (PRODUCERS * EACH + 1) as u64);
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), PRODUCERS * EACH);
    order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_added_concurrently_start_in_id_order() {
    for round in 0..3 {
        let order = start_order_of_tasks_added_concurrently().await;
        let mut sorted = order.clone();
        sorted.sort_unstable();
        let first_out_of_order = order.iter().zip(&sorted).position(|(a, b)| a != b);
        assert_eq!(
            first_out_of_order, None,
            "round {round}: tasks started out of id order"
        );
    }
}
