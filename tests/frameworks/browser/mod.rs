//! The dashboard in headless Chromium, against a real server on
//! 127.0.0.1: the page goes live, a task's progress is seen moving in the
//! DOM, screenshots are taken at two widths and in the dark scheme (saved
//! under the target directory, `tmp/dashboard/`), cancel works where it is
//! allowed and is refused where it is not, a task's page shows its events,
//! and the page says when it lost the server and comes back when a new one
//! listens on the same port. Each framework's file serves the dashboards its own way
//! and runs [`walk_through`].

mod chromium;

use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use etiquette_core::{Builder, Dashboard, Etiquette, TaskContext};
use etiquette_tests::Probe;
use tokio::sync::Mutex;

use self::chromium::Chromium;
use crate::socket::RunningServer;
use crate::suite::within;

/// One browser at a time: three Chromiums at once on a small machine would
/// make every step slow.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// A failure with a cause, as real jobs have.
#[derive(Debug)]
struct SendingFailed(std::io::Error);

impl fmt::Display for SendingFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending the welcome email failed")
    }
}

impl Error for SendingFailed {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.0)
    }
}

/// Forty steps of 100 ms, each reported.
async fn forty_steps(context: TaskContext) {
    for step in 1..=40_u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        context.report(f32::from(step) / 40.0, format!("step {step} of 40"));
    }
}

fn queue() -> Etiquette {
    Builder::new().max_concurrent_tasks(4).build().unwrap()
}

/// A connection state of the page, as a JavaScript test.
fn state_is(states: &[&str]) -> String {
    format!(
        "{:?}.includes(document.getElementById('connection').dataset.state)",
        states
    )
}

/// Saves `png` as `<target>/tmp/dashboard/<name>.png`, after checking it is
/// one.
fn save_screenshot(name: &str, png: &[u8]) -> PathBuf {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    assert!(
        png.len() > 10_000,
        "{name}: {} bytes, nearly empty",
        png.len()
    );
    let directory = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// The walk-through, on the server `serve(port, dashboards)` starts
/// (`framework` names its screenshots).
pub(crate) async fn walk_through(
    framework: &str,
    serve: impl Fn(u16, Vec<(&'static str, Dashboard)>) -> RunningServer,
) {
    let _one_at_a_time = ONE_BROWSER.lock().await;
    let port = crate::socket::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (probe, mut signals) = Probe::new();
    let etiquette = queue();
    let server = serve(
        port,
        vec![
            ("/etiquette", Dashboard::new(&etiquette).allow_cancel(true)),
            ("/read-only", Dashboard::new(&etiquette)),
        ],
    );
    let decorum = etiquette.decorum();
    // Something to show: two successes and a failure with a cause.
    for _ in 0..2 {
        decorum.add_task(async {}).await.unwrap();
    }
    let failing = decorum
        .add_task(async {
            Err::<(), _>(SendingFailed(std::io::Error::other("connection refused")))
        })
        .await
        .unwrap();
    within("the failing task's outcome", failing.outcome())
        .await
        .unwrap_err();

    let mut chromium = Chromium::start(1280, 900).await;
    chromium.open(&format!("{base}/etiquette")).await;
    chromium
        .until("the page to go live", &state_is(&["live"]))
        .await;
    chromium
        .until(
            "the failure and its error chain on the page",
            "document.getElementById('failures').textContent\
             .includes('sending the welcome email failed: connection refused')",
        )
        .await;

    // A task's progress, seen moving.
    let stepping = decorum.task_with_context(forty_steps).add().await.unwrap();
    let bar = format!(
        "document.querySelector('#running tr[data-task=\"{}\"] progress')?.value",
        stepping.id()
    );
    let first = chromium
        .until(
            "the task's progress on the page",
            &format!("{bar} > 0 && {bar}"),
        )
        .await;
    let first = first.as_f64().unwrap();
    let later = chromium
        .until(
            "the task's progress to move on the page",
            &format!("{bar} > {first} && {bar}"),
        )
        .await;
    assert!(later.as_f64().unwrap() > first);
    let message = chromium
        .eval(&format!(
            "document.querySelector('#running tr[data-task=\"{}\"] .message').textContent",
            stepping.id()
        ))
        .await;
    assert!(message.as_str().unwrap().starts_with("step "), "{message}");

    // Screenshots while it runs, at two widths.
    for (width, height) in [(1280, 900), (390, 844)] {
        chromium.resize(width, height).await;
        chromium
            .eval("new Promise((done) => requestAnimationFrame(() => done(true)))")
            .await;
        let png = chromium.screenshot().await;
        save_screenshot(&format!("{framework}-{width}"), &png);
    }
    chromium.resize(1280, 900).await;
    chromium.prefer_dark(true).await;
    let png = chromium.screenshot().await;
    save_screenshot(&format!("{framework}-1280-dark"), &png);
    chromium.prefer_dark(false).await;

    // Cancel where it is allowed: a task held at the gate, cancelled with
    // its button.
    let held = decorum.add_task(probe.block()).await.unwrap();
    within("the held task to start", signals.wait_for(1)).await;
    let button = format!("document.querySelector('[data-cancel=\"{}\"]')", held.id());
    chromium
        .until(
            "the held task's Cancel button",
            &format!("{button} !== null"),
        )
        .await;
    chromium.eval(&format!("{button}.click(), true")).await;
    let outcome = within("the held task's outcome", held.outcome()).await;
    assert!(outcome.unwrap_err().is_cancelled());
    chromium
        .until(
            "the page to say the task was cancelled",
            &format!(
                "document.getElementById('notice').textContent === 'Task {} was cancelled.'",
                held.id()
            ),
        )
        .await;
    chromium
        .until(
            "the cancelled task to leave the running list",
            &format!(
                "!document.querySelector('#running tr[data-task=\"{}\"]')",
                held.id()
            ),
        )
        .await;

    // The task's page: its events, and the error of a failure.
    chromium
        .open(&format!("{base}/etiquette#/tasks/{}", failing.id()))
        .await;
    chromium
        .until(
            "the failed task's page with its events",
            "document.querySelectorAll('#task-events li').length >= 3 \
             && document.getElementById('task-status').textContent === 'failed'",
        )
        .await;
    let error = chromium
        .eval("document.getElementById('task-error').textContent")
        .await;
    assert_eq!(
        error,
        "sending the welcome email failed: connection refused"
    );
    chromium
        .eval("new Promise((done) => requestAnimationFrame(() => done(true)))")
        .await;
    let png = chromium.screenshot().await;
    save_screenshot(&format!("{framework}-task-1280"), &png);

    // Cancel where it is not allowed: no button, and the endpoint refuses.
    let held = decorum.add_task(probe.block()).await.unwrap();
    within("the second held task to start", signals.wait_for(1)).await;
    chromium.open(&format!("{base}/read-only")).await;
    chromium
        .until("the read-only page to go live", &state_is(&["live"]))
        .await;
    chromium
        .until(
            "the held task on the read-only page",
            &format!(
                "document.querySelector('#running tr[data-task=\"{}\"]')",
                held.id()
            ),
        )
        .await;
    let buttons = chromium
        .eval("document.querySelectorAll('[data-cancel], #task-cancel:not([hidden])').length")
        .await;
    assert_eq!(buttons, 0, "no Cancel button where cancelling is off");
    let refused = chromium
        .eval(&format!(
            "fetch('/read-only/api/tasks/{}/cancel', {{ method: 'POST', \
             headers: {{ 'x-etiquette-dashboard': 'cancel' }} }}).then((r) => r.status)",
            held.id()
        ))
        .await;
    assert_eq!(refused, 403);
    assert_eq!(held.status_now().name(), "running", "it runs on");
    probe.open_gate();
    within("the second held task's outcome", held.outcome())
        .await
        .unwrap();

    // The server goes away: the page says so; a new one on the same port,
    // with a queue of its own, and the page is live again, showing it.
    chromium.open(&format!("{base}/etiquette")).await;
    chromium
        .until("the page to go live again", &state_is(&["live"]))
        .await;
    etiquette.close_event_streams();
    server.shut_down().await;
    chromium
        .until(
            "the page to say it lost the server",
            &state_is(&["reconnecting", "disconnected", "closed"]),
        )
        .await;
    within("the release of the first queue", etiquette.release()).await;

    let restarted = queue();
    restarted
        .decorum()
        .add_task(async {})
        .await
        .unwrap()
        .outcome()
        .await
        .unwrap();
    let server = serve(
        port,
        vec![("/etiquette", Dashboard::new(&restarted).allow_cancel(true))],
    );
    chromium
        .until(
            "the page to be live with the new server",
            &state_is(&["live"]),
        )
        .await;
    chromium
        .until(
            "the new server's counters on the page",
            "document.getElementById('stat-accepted').textContent === '1'",
        )
        .await;
    restarted.close_event_streams();
    server.shut_down().await;
    within("the release of the second queue", restarted.release()).await;
}
