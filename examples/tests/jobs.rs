//! The jobs examples, end to end: the page's progress bar reaches 100 % in a
//! real headless Chromium, and shutdown completes while an event stream is
//! open.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

mod common;
use common::{free_port, name, send_sigterm, start_listening, within};

/// How long the test waits for the example to start, to answer or to end an
/// event stream: far longer than any of these takes, short enough to fail
/// in seconds, not hang.
const BOUND: Duration = Duration::from_secs(10);
/// How long the example gets to exit after SIGTERM (its drain deadline is
/// one second).
const EXIT: Duration = Duration::from_secs(20);
/// How long headless Chromium gets to render the page.
const CHROMIUM: Duration = Duration::from_secs(60);

/// Starts the example with job steps of `step_ms` and a one-second drain
/// deadline, and waits until it is listening.
async fn start(binary: &str, port: u16, step_ms: u64) -> Child {
    start_with(binary, port, step_ms, &[]).await
}

/// [`start`], with `env` besides.
async fn start_with(binary: &str, port: u16, step_ms: u64, env: &[(&str, &str)]) -> Child {
    let step_ms = step_ms.to_string();
    let mut env = env.to_vec();
    env.extend([("STEP_MS", step_ms.as_str()), ("DRAIN_SECS", "1")]);
    let (mut child, _) = start_listening(binary, port, &env, BOUND).await;
    // Keep draining stdout so the example never blocks on a full pipe.
    let stdout = child.stdout.take().unwrap();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    });
    child
}

async fn terminate(binary: &str, mut child: Child) -> std::process::ExitStatus {
    send_sigterm(&child, BOUND).await;
    let what = format!("{} to exit after SIGTERM", name(binary));
    within(EXIT, &what, child.wait()).await.unwrap()
}

/// Loads the page with `?autostart` in headless Chromium and returns the
/// DOM once the page's script has run; Chromium's virtual time waits for the
/// event stream.
async fn rendered_page(port: u16) -> String {
    rendered(port, "/?autostart").await
}

/// The DOM of page `path` once its script has run, as [`rendered_page`].
async fn rendered(port: u16, path: &str) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = std::env::temp_dir().join(format!("etiquette-chromium-{port}"));
    let output = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = within(CHROMIUM, "headless Chromium to render the page", output)
        .await
        .unwrap_or_else(|error| panic!("cannot run {chromium}: {error}"));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn progress_bar_reaches_100_percent(binary: &str) {
    let port = free_port();
    let child = start(binary, port, 50).await;
    let dom = rendered_page(port).await;
    assert!(
        dom.contains(r#"<progress id="bar" max="100" value="100"></progress>"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<span id="percent">100%</span>"#), "{dom}");
    assert!(dom.contains(r#"<em id="state">succeeded</em>"#), "{dom}");
    assert!(terminate(binary, child).await.success());
}

async fn shutdown_completes_with_an_open_stream(binary: &str) {
    let port = free_port();
    // A job of ten minutes: its event stream stays open through shutdown.
    let child = start(binary, port, 60_000).await;
    let http = reqwest::Client::new();
    let body = within(BOUND, "the reply to POST /jobs", async {
        let started = http
            .post(format!("http://127.0.0.1:{port}/jobs"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);
        assert_eq!(started.headers()["location"], "/jobs/1");
        started.json::<serde_json::Value>().await.unwrap()
    })
    .await;
    assert_eq!(body["id"], 1);

    let mut stream = within(
        BOUND,
        "the reply to GET /jobs/1/events",
        http.get(format!("http://127.0.0.1:{port}/jobs/1/events"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(stream.status(), 200);
    let first = within(BOUND, "job 1's first event", stream.chunk())
        .await
        .unwrap()
        .expect("a first event");
    assert!(String::from_utf8_lossy(&first).contains("event: queued"));

    let status = terminate(binary, child).await;
    assert!(status.success(), "{status}");
    // The stream was ended by the server, not left hanging.
    within(BOUND, "the end of job 1's event stream", async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
}

#[tokio::test]
async fn axum_jobs_serves_prometheus_metrics() {
    let port = free_port();
    let binary = env!("CARGO_BIN_EXE_axum_jobs");
    let child = start(binary, port, 1).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let post = http.post(format!("http://127.0.0.1:{port}/jobs")).send();
        let reply = within(BOUND, "the reply to POST /jobs", post)
            .await
            .unwrap();
        assert_eq!(reply.status(), 202);
    }
    // The last job's stream ends with its final event: then all three ran.
    for id in 1..=3 {
        let what = format!("the end of job {id}'s event stream");
        let events = within(BOUND, &what, async {
            let events = http
                .get(format!("http://127.0.0.1:{port}/jobs/{id}/events"))
                .send()
                .await
                .unwrap();
            events.text().await.unwrap()
        })
        .await;
        assert!(events.contains("event: succeeded"), "{events}");
    }
    let metrics = within(BOUND, "the reply to GET /metrics", async {
        http.get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
    .await;
    for line in [
        r#"etiquette_tasks_accepted_total{queue="jobs"} 3"#,
        r#"etiquette_tasks_completed_total{queue="jobs"} 3"#,
        r#"etiquette_tasks_running{queue="jobs"} 0"#,
        r#"etiquette_task_run_seconds_count{queue="jobs"} 3"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing from:\n{metrics}"
        );
    }
    assert!(terminate(binary, child).await.success());
}

/// The page says when it cannot follow a job (here, one that does not
/// exist), rather than showing a bar that never moves.
async fn an_unknown_job_is_shown_as_such(binary: &str) {
    let port = free_port();
    let child = start(binary, port, 50).await;
    let dom = rendered(port, "/?job=999999").await;
    assert!(
        dom.contains(r#"<em id="state">cannot follow job 999999</em>"#),
        "{dom}"
    );
    assert!(terminate(binary, child).await.success());
}

/// The README's walk-through: two servers on one PostgreSQL database, a job
/// started through A, A killed (SIGKILL) mid-job; B runs the job again once
/// A's lease expires, and B's page, following the job by id, shows it
/// reach 100 %.
async fn a_job_outlives_its_server_killed_mid_job(binary: &str) {
    let database =
        etiquette_postgres::testing::TempServer::start().unwrap_or_else(|error| panic!("{error}"));
    let url = database.url("postgres");
    let env = [("DATABASE_URL", url.as_str()), ("LEASE_MS", "1000")];
    // Ten steps of half a second: A is still at it when it is killed.
    let (port_a, port_b) = (free_port(), free_port());
    let mut a = start_with(binary, port_a, 500, &env).await;
    let http = reqwest::Client::new();
    let id = within(BOUND, "the reply to POST /jobs on A", async {
        let started = http
            .post(format!("http://127.0.0.1:{port_a}/jobs"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);
        started.json::<serde_json::Value>().await.unwrap()["id"].clone()
    })
    .await;
    let status = |port: u16| {
        let http = http.clone();
        let id = id.clone();
        async move {
            let reply = http
                .get(format!("http://127.0.0.1:{port}/jobs/{id}"))
                .send()
                .await
                .unwrap();
            reply.json::<serde_json::Value>().await.unwrap()
        }
    };
    within(BOUND, "the job to run on A", async {
        while status(port_a).await["status"] != "running" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let b = start_with(binary, port_b, 50, &env).await;
    within(BOUND, "A to die of SIGKILL", a.kill())
        .await
        .unwrap();
    let dom = rendered(port_b, &format!("/?job={id}")).await;
    assert!(
        dom.contains(r#"<progress id="bar" max="100" value="100"></progress>"#),
        "{dom}"
    );
    assert!(dom.contains(r#"<em id="state">succeeded</em>"#), "{dom}");
    let finished = within(BOUND, "the job's status on B", status(port_b)).await;
    assert_eq!(
        finished,
        serde_json::json!({ "status": "succeeded", "attempts": 2 }),
        "run again, once, by B"
    );
    assert!(terminate(binary, b).await.success());
}

macro_rules! jobs {
    ($($example:ident),* $(,)?) => {$(
        mod $example {
            #[tokio::test]
            async fn progress_bar_reaches_100_percent_in_chromium() {
                super::progress_bar_reaches_100_percent(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn an_unknown_job_is_shown_as_such() {
                super::an_unknown_job_is_shown_as_such(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn a_job_outlives_its_server_killed_mid_job_on_postgres() {
                super::a_job_outlives_its_server_killed_mid_job(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn shutdown_completes_with_an_open_event_stream() {
                super::shutdown_completes_with_an_open_stream(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }
        }
    )*};
}

jobs!(axum_jobs, actix_jobs, poem_jobs);
