//! Every example honours the shared contract: listens on 127.0.0.1:$PORT,
//! answers `GET /add-task` with `OK`, runs the task, and on SIGTERM drains
//! every accepted task, logs one release line and exits 0.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const REQUESTS: usize = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the example and waits until it says it is listening.
async fn start(binary: &str, port: u16) -> (Child, Vec<String>) {
    let mut child = Command::new(binary)
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let listening = line.contains(&format!("listening on http://127.0.0.1:{port}"));
        seen.push(line);
        if listening {
            return (child, seen);
        }
    }
    panic!("{binary} exited before listening: {seen:#?}");
}

async fn honours_the_contract(binary: &str, task_log: &str) {
    let port = free_port();
    let (mut child, mut log) = start(binary, port).await;

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ids = Vec::new();
    for _ in 0..REQUESTS {
        let reply = http.get(format!("{base}/add-task")).send().await.unwrap();
        assert_eq!(reply.status(), 200);
        let id = reply.headers()["x-task-id"].to_str().unwrap().to_owned();
        ids.push(id.parse::<u64>().expect("a numeric task id"));
        assert_eq!(reply.text().await.unwrap(), "OK");
    }
    assert_eq!(ids, [1, 2, 3]);

    let reply = http.get(format!("{base}/tasks/1")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let status: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    assert!(
        ["queued", "running", "succeeded"].contains(&status["status"].as_str().unwrap()),
        "{status}"
    );
    let missing = http
        .get(format!("{base}/tasks/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().await;
    assert!(killed.unwrap().success());

    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        log.push(line);
    }
    let status = child.wait().await.unwrap();
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
        #[tokio::test]
        async fn $example() {
            honours_the_contract(env!(concat!("CARGO_BIN_EXE_", stringify!($example))), $task_log).await;
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
