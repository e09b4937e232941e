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
    if database.is_some() {
        // On PostgreSQL a release leaves the jobs this process has not
        // claimed in their rows, for other processes: here, none is left.
        for id in &ids {
            let what = format!("{}'s job {id} to succeed", name(binary));
            within(BOUND, &what, async {
                loop {
                    let reply = http.get(format!("{base}/tasks/{id}")).send().await.unwrap();
                    let status: serde_json::Value = reply.json().await.unwrap();
                    if status["status"] == "succeeded" {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        }
    }
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

/// Sends SIGTERM and waits (`EXIT` at most) for the example to exit,
/// returning how it exited and everything it logged from `log` on.
async fn stop(
    binary: &str,
    mut child: tokio::process::Child,
    mut log: Vec<String>,
) -> (std::process::ExitStatus, String) {
    send_sigterm(&child, BOUND).await;
    let what = format!("{} to exit after SIGTERM", name(binary));
    let status = within(EXIT, &what, async {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(line);
        }
        child.wait().await.unwrap()
    })
    .await;
    (status, log.join("\n"))
}

/// A client that sends half a request and then nothing cannot hold the
/// stop past its deadline (`DRAIN_SECS=1`).
async fn a_half_sent_request_cannot_hold_the_stop(binary: &str) {
    use tokio::io::AsyncWriteExt as _;
    let port = free_port();
    let env = [("DRAIN_SECS", "1")];
    let (child, log) = start_listening(binary, port, &env, BOUND).await;
    let mut half = within(
        BOUND,
        "a connection to the example",
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .unwrap();
    let request = b"GET /add-task HTTP/1.1\r\nHost: x\r\n";
    within(BOUND, "half a request sent", half.write_all(request))
        .await
        .unwrap();
    let (status, log) = stop(binary, child, log).await;
    assert!(status.success(), "{binary} exited with {status}:\n{log}");
    assert!(log.contains("released: accepted=0"), "{log}");
    drop(half);
}

/// Under load, the stop closes intake at once: requests waiting for room
/// are answered 503, none is accepted after the signal, and the tasks
/// cancelled at the deadline are summed up in one line, not one each.
async fn a_stop_under_load_refuses_waiting_requests_at_once(binary: &str) {
    let port = free_port();
    // The sleeper's tasks last ten minutes here, so that none of the
    // running ones can end (and make room) while the queue is filled, on
    // however slow a machine; the one-second drain cancels them.
    let env = [
        ("DRAIN_SECS", "1"),
        ("SLEEP_MS", "600000"),
        ("RUST_LOG", "info"),
    ];
    let (child, log) = start_listening(binary, port, &env, BOUND).await;
    let http = reqwest::Client::new();
    let add = |http: reqwest::Client| async move {
        let reply = http
            .get(format!("http://127.0.0.1:{port}/add-task"))
            .send()
            .await;
        reply.unwrap().status().as_u16()
    };
    // 16 running and 1,024 waiting for a worker: the queue is full.
    within(BOUND, "1,040 tasks accepted", async {
        let mut accepted = tokio::task::JoinSet::new();
        for _ in 0..1_040 {
            accepted.spawn(add(http.clone()));
            if accepted.len() == 64 {
                assert_eq!(accepted.join_next().await.unwrap().unwrap(), 200);
            }
        }
        while let Some(status) = accepted.join_next().await {
            assert_eq!(status.unwrap(), 200);
        }
    })
    .await;
    // Eight more wait for room.
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..8 {
        waiting.spawn(add(http.clone()));
    }
    within(BOUND, "eight requests to wait for room", async {
        loop {
            let stats = http
                .get(format!("http://127.0.0.1:{port}/stats"))
                .send()
                .await;
            let stats: serde_json::Value = stats.unwrap().json().await.unwrap();
            if stats["adds_waiting"] == 8 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (status, log) = stop(binary, child, log).await;
    let mut answers = Vec::new();
    while let Some(status) = waiting.join_next().await {
        answers.push(status.unwrap());
    }
    assert_eq!(answers, [503; 8], "refused once intake closed:\n{log}");
    assert!(status.success(), "{binary} exited with {status}:\n{log}");
    assert!(
        log.contains("released: accepted=1040 completed=0"),
        "none accepted after the signal:\n{log}"
    );
    assert_eq!(log.matches("task cancelled").count(), 0, "{log}");
    assert_eq!(
        log.matches("release deadline passed").count(),
        1,
        "one line for the 1,040 cancelled:\n{log}"
    );
}

macro_rules! stopping {
    ($($example:ident),* $(,)?) => {$(
        mod $example {
            #[tokio::test]
            async fn a_half_sent_request_cannot_hold_the_stop() {
                super::super::a_half_sent_request_cannot_hold_the_stop(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn a_stop_under_load_refuses_waiting_requests_at_once() {
                super::super::a_stop_under_load_refuses_waiting_requests_at_once(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }
        }
    )*};
}

mod stopping {
    stopping!(axum_sleeper, actix_sleeper, poem_sleeper);
}

/// What `binary` says on stderr when started with `env`, and that it
/// fails: it must not start.
async fn refusal(binary: &str, env: &[(&str, &str)]) -> String {
    let run = tokio::process::Command::new(binary)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let what = format!("{} to refuse {env:?}", name(binary));
    let output = within(BOUND, &what, run).await.unwrap();
    assert!(!output.status.success(), "{binary} started with {env:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Settings that cannot be honoured stop the example with a message naming
/// the variable, its value and what it takes; a port in use, its address.
async fn bad_settings_are_refused_by_name(binary: &str) {
    for (env, says) in [
        (
            ("PORT", "abc"),
            r#"PORT="abc" is not valid: it takes a port from 1 to 65535"#,
        ),
        (("PORT", "99999"), r#"PORT="99999" is not valid"#),
        (("PORT", "-1"), r#"PORT="-1" is not valid"#),
        (
            ("DRAIN_SECS", "soon"),
            r#"DRAIN_SECS="soon" is not valid: it takes seconds"#,
        ),
        (("STEP_MS", "-5"), r#"STEP_MS="-5" is not valid"#),
    ] {
        let env = if env.0 == "PORT" {
            vec![env]
        } else {
            vec![env, ("PORT", "1")]
        };
        let said = refusal(binary, &env).await;
        assert!(said.contains(says), "{env:?}: {said}");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let said = refusal(binary, &[("PORT", &port)]).await;
    assert!(
        said.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{said}"
    );
}

#[tokio::test]
async fn bad_settings_are_refused_by_name_in_every_framework() {
    for binary in [
        env!("CARGO_BIN_EXE_axum_counter"),
        env!("CARGO_BIN_EXE_actix_counter"),
        env!("CARGO_BIN_EXE_poem_counter"),
    ] {
        bad_settings_are_refused_by_name(binary).await;
    }
}

/// How `binary` answers the requests a link checker, a client with the
/// wrong method, a bad id or a wrong path sends: (request, status, content
/// type, body).
async fn answers(binary: &str) -> Vec<(String, u16, String, String)> {
    let port = free_port();
    let (child, _) = start_listening(binary, port, &[], BOUND).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut answers = Vec::new();
    for (method, path) in [
        ("HEAD", "/add-task"),
        ("PUT", "/add-task"),
        ("POST", "/add-task"),
        ("GET", "/add-task"),
        ("GET", "/tasks/abc"),
        ("GET", "/tasks/999999"),
        ("HEAD", "/tasks/999999"),
        ("DELETE", "/tasks/1"),
        ("POST", "/stats"),
        ("GET", "/nope"),
        ("POST", "/nope/2?x=1"),
    ] {
        let what = format!("{}'s answer to {method} {path}", name(binary));
        let request = http.request(method.parse().unwrap(), format!("{base}{path}"));
        let reply = within(BOUND, &what, request.send()).await.unwrap();
        let status = reply.status().as_u16();
        let kind = reply.headers().get("content-type");
        let kind = kind.map_or("", |kind| kind.to_str().unwrap()).to_owned();
        let body = within(BOUND, &what, reply.text()).await.unwrap();
        answers.push((format!("{method} {path}"), status, kind, body));
    }
    let stats = within(
        BOUND,
        "GET /stats",
        http.get(format!("{base}/stats")).send(),
    );
    let stats: serde_json::Value = stats.await.unwrap().json().await.unwrap();
    assert_eq!(stats["accepted"], 2, "only POST and GET add a task");
    let (status, log) = stop(binary, child, Vec::new()).await;
    assert!(status.success(), "{log}");
    answers
}

#[tokio::test]
async fn the_three_frameworks_answer_the_same_request_the_same_way() {
    let axum = answers(env!("CARGO_BIN_EXE_axum_counter")).await;
    let text = "text/plain; charset=utf-8";
    let expected: Vec<(String, u16, String, String)> = [
        ("HEAD /add-task", 405, "", ""),
        ("PUT /add-task", 405, "", ""),
        ("POST /add-task", 200, text, "OK"),
        ("GET /add-task", 200, text, "OK"),
        ("GET /tasks/abc", 400, text, "not a task id: abc"),
        ("GET /tasks/999999", 404, text, "no task 999999"),
        ("HEAD /tasks/999999", 404, text, ""),
        ("DELETE /tasks/1", 405, "", ""),
        ("POST /stats", 405, "", ""),
        ("GET /nope", 404, text, "not found: /nope"),
        ("POST /nope/2?x=1", 404, text, "not found: /nope/2"),
    ]
    .into_iter()
    .map(|(request, status, kind, body)| (request.into(), status, kind.into(), body.into()))
    .collect();
    assert_eq!(axum, expected, "axum");
    let actix = answers(env!("CARGO_BIN_EXE_actix_counter")).await;
    assert_eq!(actix, expected, "actix-web");
    let poem = answers(env!("CARGO_BIN_EXE_poem_counter")).await;
    assert_eq!(poem, expected, "poem");
}
