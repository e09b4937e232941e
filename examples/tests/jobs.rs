//! The jobs examples, end to end: the page's progress bar reaches 100 % in a
//! real headless Chromium; a second click follows the second job only; a
//! refused start and a lost connection are shown as such; and shutdown
//! completes while an event stream is open.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

mod common;
use common::{free_port, name, send_sigterm, start_listening, within};

#[path = "common/chromium.rs"]
mod chromium;
use chromium::Chromium;

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
        .args(chromium::HEADLESS)
        .args(["--virtual-time-budget=15000", "--dump-dom"])
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

/// Clicks the page's button.
const CLICK: &str = "document.getElementById('start').click(), true";

/// What the page shows, as a JavaScript object: the job's id, the bar's
/// value, the percentage and the state.
const SHOWN: &str = "({ job: document.getElementById('job').textContent, \
    bar: document.getElementById('bar').value, \
    percent: document.getElementById('percent').textContent, \
    state: document.getElementById('state').textContent })";

/// Records in `window.shown`, from now on, what the page shows after each
/// change to it.
fn record_what_is_shown() -> String {
    format!(
        "window.shown = []; \
         new MutationObserver(() => window.shown.push({SHOWN})).observe(document.body, \
           {{ subtree: true, childList: true, characterData: true, attributes: true }}); \
         true"
    )
}

/// What the page showed since [`record_what_is_shown`].
async fn shown(chromium: &mut Chromium) -> Vec<Value> {
    let shown = chromium.eval("window.shown").await;
    shown.as_array().expect("window.shown recorded").clone()
}

/// The bar's value in one of [`shown`]'s records, after checking that the
/// percentage says the same.
fn bar(shown: &Value) -> u64 {
    let bar = shown["bar"].as_u64().unwrap();
    assert_eq!(shown["percent"], format!("{bar}%"), "{shown}");
    bar
}

/// A second click follows the second job only. Job 1 is three steps or
/// more ahead of job 2 when the button is clicked again: were its stream
/// left open, its events would still move the bar, back and forth between
/// the two jobs, and "succeeded" would show before job 2 ended.
async fn a_second_click_follows_only_the_second_job(binary: &str) {
    let port = free_port();
    let child = start(binary, port, 200).await;
    let mut chromium = Chromium::start().await;
    chromium.open(&format!("http://127.0.0.1:{port}/")).await;
    chromium.eval(CLICK).await;
    chromium
        .until(
            "job 1 at 30 % on the page",
            "document.getElementById('job').textContent === '1' \
             && document.getElementById('bar').value >= 30",
        )
        .await;
    chromium.eval(&record_what_is_shown()).await;
    chromium.eval(CLICK).await;
    chromium
        .until(
            "job 2 on the page",
            "document.getElementById('job').textContent === '2'",
        )
        .await;
    let events = within(BOUND, "the end of job 2's event stream", async {
        let events = reqwest::get(format!("http://127.0.0.1:{port}/jobs/2/events"));
        events.await.unwrap().text().await.unwrap()
    })
    .await;
    assert!(events.contains("event: succeeded"), "{events}");
    chromium
        .until(
            "the page to show a job succeeded",
            "window.shown.at(-1)?.state === 'succeeded'",
        )
        .await;

    let shown = shown(&mut chromium).await;
    // Until the second POST is answered, the page still follows job 1.
    let second: Vec<&Value> = shown.iter().skip_while(|s| s["job"] != "2").collect();
    assert!(
        second.iter().all(|s| s["job"] == "2"),
        "job 2 shown, then another: {shown:#?}"
    );
    let bars: Vec<u64> = second.iter().map(|s| bar(s)).collect();
    assert!(
        bars.windows(2).all(|pair| pair[0] <= pair[1]),
        "the bar went back, moved by job 1's events: {bars:?}\n{shown:#?}"
    );
    assert_eq!(bars.first(), Some(&0), "{shown:#?}");
    assert_eq!(bars.last(), Some(&100), "{shown:#?}");
    let succeeded = second.iter().filter(|s| s["state"] == "succeeded").count();
    assert_eq!(succeeded, 1, "succeeded once, at job 2's end: {shown:#?}");
    drop(chromium);
    assert!(terminate(binary, child).await.success());
}

/// The jobs example's gauges and counters, from `GET /stats`.
async fn stats(port: u16) -> Value {
    let stats = reqwest::get(format!("http://127.0.0.1:{port}/stats"));
    stats.await.unwrap().json().await.unwrap()
}

/// A start the server refuses is shown as refused, with the status and
/// the reason, not as a bar that never moves. The refusal is a real one:
/// the queue is full (4 jobs running, 1,024 waiting), the page's POST
/// waits for room, and the server's stop begins: it is answered 503.
async fn a_refused_start_is_shown_with_its_status(binary: &str) {
    let port = free_port();
    // Jobs of ten minutes: none makes room.
    let child = start(binary, port, 60_000).await;
    within(BOUND, "1,028 jobs accepted", async {
        let http = reqwest::Client::new();
        let mut accepted = tokio::task::JoinSet::new();
        for _ in 0..1_028 {
            let post = http.post(format!("http://127.0.0.1:{port}/jobs")).send();
            accepted.spawn(async move { post.await.unwrap().status().as_u16() });
            if accepted.len() == 64 {
                assert_eq!(accepted.join_next().await.unwrap().unwrap(), 202);
            }
        }
        while let Some(status) = accepted.join_next().await {
            assert_eq!(status.unwrap(), 202);
        }
    })
    .await;
    let mut chromium = Chromium::start().await;
    chromium.open(&format!("http://127.0.0.1:{port}/")).await;
    chromium.eval(CLICK).await;
    within(BOUND, "the page's POST /jobs to wait for room", async {
        while stats(port).await["adds_waiting"] != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let status = terminate(binary, child).await;
    assert!(status.success(), "{status}");
    chromium
        .until(
            "the page to show its POST /jobs refused",
            "document.getElementById('state').textContent.startsWith('not started: ')",
        )
        .await;
    let shown = chromium.eval(SHOWN).await;
    assert_eq!(
        shown,
        serde_json::json!({
            "job": "–", "bar": 0, "percent": "0%",
            "state": "not started: 503 the task queue is shutting down",
        })
    );
}

/// A server that dies mid-job is shown as a lost connection, and the bar
/// keeps the last progress the page saw: it claims none it did not see.
async fn a_lost_connection_is_shown_as_such(binary: &str) {
    let port = free_port();
    // Steps of a second: the page sees the first, the server dies in the
    // second.
    let mut child = start(binary, port, 1_000).await;
    let mut chromium = Chromium::start().await;
    chromium.open(&format!("http://127.0.0.1:{port}/")).await;
    chromium.eval(&record_what_is_shown()).await;
    chromium.eval(CLICK).await;
    chromium
        .until(
            "job 1 at 10 % on the page",
            "document.getElementById('bar').value >= 10",
        )
        .await;
    within(BOUND, "the server to die of SIGKILL", child.kill())
        .await
        .unwrap();
    let lost = "connection lost: reconnecting…";
    chromium
        .until(
            "the page to say the connection was lost",
            &format!("document.getElementById('state').textContent === {lost:?}"),
        )
        .await;
    let shown = shown(&mut chromium).await;
    let at = shown.iter().position(|s| s["state"] == lost).unwrap();
    let before = shown[..at]
        .iter()
        .rev()
        .find(|s| s["state"] != lost)
        .expect("progress shown before the connection was lost");
    let seen = bar(before);
    assert!((10..100).contains(&seen), "{shown:#?}");
    for after in &shown[at..] {
        assert_eq!(bar(after), seen, "progress it did not see: {shown:#?}");
        assert_eq!(after["job"], "1");
    }
    let title = chromium.eval("document.title").await;
    assert_eq!(title, "etiquette: background jobs");
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
            async fn a_second_click_follows_only_the_second_job() {
                super::a_second_click_follows_only_the_second_job(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn a_refused_start_is_shown_with_its_status() {
                super::a_refused_start_is_shown_with_its_status(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
            }

            #[tokio::test]
            async fn a_lost_connection_is_shown_as_such() {
                super::a_lost_connection_is_shown_as_such(env!(concat!("CARGO_BIN_EXE_", stringify!($example)))).await;
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
