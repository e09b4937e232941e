//! What an operator reads in the logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use etiquette_core::Etiquette;

use crate::support::release_after;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn explode() {
    panic!("disk on fire");
}

#[derive(Debug)]
struct SendFailed(std::io::Error);
impl std::fmt::Display for SendFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sending the email failed")
    }
}
impl std::error::Error for SendFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A typed job that always fails.
#[derive(serde::Serialize, serde::Deserialize)]
struct Refuse;

impl etiquette_core::Job for Refuse {
    const NAME: &'static str = "refuse";
    type Error = std::io::Error;

    async fn run(&self, _context: etiquette_core::TaskContext) -> Result<(), Self::Error> {
        Err(std::io::Error::other("refused"))
    }
}

#[test]
fn task_logs_carry_the_task_id_and_the_request_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .without_time()
        .finish();
    // Global, not scoped: tracing caches each callsite's interest
    // process-wide, so a scoped subscriber misses the queue's `task` span
    // whenever a test on another thread reached it first. Installing a
    // global one re-asks every callsite. Other tests' lines land in the
    // capture too; the lines looked for are this test's alone.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    // With a timer, for the bound on the release.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let etiquette = Etiquette::initiate(1).unwrap();
        let decorum = etiquette.decorum();
        let request = tracing::info_span!("request", path = "/signup");
        let _entered = request.enter();
        decorum
            .add_task(async { tracing::info!("welcome email sent") })
            .await
            .unwrap();
        decorum.add_task(async { explode() }).await.unwrap();
        decorum
            .add_task(async {
                Err::<(), _>(SendFailed(std::io::Error::other("connection refused")))
            })
            .await
            .unwrap();
        decorum
            .job(Refuse)
            .retry(etiquette_core::RetryPolicy::never())
            .add()
            .await
            .unwrap();
        drop(_entered);
        release_after(&etiquette, "4 tasks").await;
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains(r#"request{path="/signup"}:task{task_id=1 attempt=1}: "#)
            && logs.contains("welcome email sent"),
        "{logs}"
    );
    assert!(
        logs.contains(
            "task{task_id=2 attempt=1}: etiquette_core::engine::shared: \
             task panicked attempts=1 error=panicked: disk on fire"
        ),
        "{logs}"
    );
    assert!(
        logs.contains(
            "task{task_id=3 attempt=1}: etiquette_core::engine::shared: task failed attempts=1 \
             error=sending the email failed: connection refused"
        ),
        "{logs}"
    );
    // A typed job's span names its kind.
    assert!(
        logs.contains(r#"task{task_id=4 job="refuse" attempt=1}: "#),
        "{logs}"
    );
}
