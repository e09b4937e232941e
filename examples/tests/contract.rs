//! Every example honours the shared contract: listens on 127.0.0.1:$PORT,
//! answers `GET /add-task` with `OK`, runs the task, and on SIGTERM drains
//! every accepted task, logs one release line and exits 0: on the in-memory
//! queue, and on PostgreSQL.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

mod common;
use common::{free_port, name, send_sigterm, start_listening, within};

const REQUESTS: usize = 3;

/// How long the test waits for the example to start or to answer: far
/// longer than either takes, short enough to fail in seconds, not hang.
const BOUND: Duration = Duration::from_secs(10);
/// How long the example gets to exit after SIGTERM: the sleepers' tasks
/// take 3 s to drain.
const EXIT: Duration = Duration::from_secs(20);

/// Checks the contract of `binary`, whose task logs `task_log`: on the
/// in-memory queue, or on PostgreSQL at `database` (`DATABASE_URL`).
async fn honours_the_contract(binary: &str, task_log: &str, database: Option<&str>) {
    let port = free_port();
    let mut env = vec![("RUST_LOG", "info")];
    env.extend(database.map(|url| ("DATABASE_URL", url)));
    let (mut child, mut log) = start_listening(binary, port, &env, BOUND).await;

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ids = Vec::new();
    for _ in 0..REQUESTS {
        let what = format!("{}'s reply to GET /add-task", name(binary));
        within(BOUND, &what, async {
            let reply = http.get(format!("{base}/add-task")).send().await.unwrap();
            assert_eq!(reply.status(), 200);
            let id = reply.headers()["x-task-id"].to_str().unwrap().to_owned();
            ids.push(id.parse::<u64>().expect("a numeric task id"));
            assert_eq!(reply.text().await.unwrap(), "OK");
        })
        .await;
    }
    assert_eq!(ids, [1, 2, 3]);

    let what = format!("{}'s reply to GET /tasks/1", name(binary));
    let status = within(BOUND, &what, async {
        let reply = http.get(format!("{base}/tasks/1")).send().await.unwrap();
        assert_eq!(reply.status(), 200);
        let body = reply.text().await.unwrap();
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    })
    .await;
    assert!(
        ["queued", "running", "succeeded"].contains(&status["status"].as_str().unwrap()),
        "{status}"
    );
    let what = format!("{}'s reply to GET /tasks/999999", name(binary));
    let missing = within(
        BOUND,
        &what,
        http.get(format!("{base}/tasks/999999")).send(),
    )
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);

    send_sigterm(&child, BOUND).await;

    let what = format!("{} to drain and exit after SIGTERM", name(binary));
    let status = within(EXIT, &what, async {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(line);
        }
        child.wait().await.unwrap()
    })
    .await;
    let log = log.join("\n");
    assert!(status.success(), "{binary} exited with {status}:\n{log}");
    assert_eq!(log.matches(task_log).count(), REQUESTS, "{log}");
    assert!(
        log.contains(&format!(
            "released: accepted={REQUESTS} completed={REQUESTS} failed=0 panicked=0 \
             timed_out=0 retried=0 cancelled=0"
        )),
        "{log}"
    );
}

macro_rules! contract {
    ($($example:ident => $task_log:expr),* $(,)?) => {$(
        mod $example {
            #[tokio::test]
            async fn in_memory() {
                super::honours_the_contract(env!(concat!("CARGO_BIN_EXE_", stringify!($example))), $task_log, None).await;
            }

            #[tokio::test]
            async fn on_postgres() {
                let database = etiquette_postgres::testing::TempServer::start()
                    .unwrap_or_else(|error| panic!("{error}"));
                let url = database.url("postgres");
                super::honours_the_contract(env!(concat!("CARGO_BIN_EXE_", stringify!($example))), $task_log, Some(&url)).await;
            }
        }
    )*};
}

contract!(
    axum_counter => "current_count=",
    axum_sleeper => "task done",
    actix_counter => "current_count=",
    actix_sleeper => "task done",
    poem_counter => "current_count=",
    poem_sleeper => "task done",
);
