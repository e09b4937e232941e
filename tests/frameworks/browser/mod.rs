//! The dashboard in headless Chromium, against a real server on 127.0.0.1:
//! the page goes live, a task's progress is seen moving in the DOM,
//! screenshots are taken at two widths and in the dark scheme (saved under
//! the target directory, `tmp/dashboard/`), cancel and retry work where
//! they are allowed and are refused where they are not, a typed job is
//! shown with its name and offered a Retry button where a closure task is
//! not, a double click retries once, a retry the queue refuses says why on
//! the page, a task's page shows its events, and the page says when it lost
//! the server and comes back when a new one listens on the same port. Each
//! framework's file serves the dashboards its own way and runs
//! [`walk_through`].

mod chromium;

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use etiquette_core::{
    Builder, Dashboard, Decorum, Etiquette, Job, RetryPolicy, TaskContext, TaskHandle,
};
use etiquette_postgres::Postgres;
use etiquette_tests::Probe;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Semaphore};

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

/// A mail server a [`Welcome`] job sends through: down until the test
/// brings it up; once up, it holds each job until the test opens its gate,
/// so that the page can be seen showing the job running.
#[derive(Debug)]
struct MailServer {
    // One flag, read by the job once per attempt and set before the click
    // that retries it: nothing else is ordered by it.
    up: AtomicBool,
    /// Closed means open: jobs waiting at it all pass once it closes.
    gate: Semaphore,
}

/// Every mail server, by number: a typed job is only data, so it carries
/// its server's number, not the server.
static MAIL_SERVERS: std::sync::Mutex<BTreeMap<u64, Arc<MailServer>>> =
    std::sync::Mutex::new(BTreeMap::new());
static NEXT_MAIL_SERVER: AtomicU64 = AtomicU64::new(1);

impl MailServer {
    /// A server, down, and its number.
    fn start() -> (u64, Arc<Self>) {
        let number = NEXT_MAIL_SERVER.fetch_add(1, SeqCst);
        let server = Arc::new(Self {
            up: AtomicBool::new(false),
            gate: Semaphore::new(0),
        });
        MAIL_SERVERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(number, Arc::clone(&server));
        (number, server)
    }

    fn find(number: u64) -> Option<Arc<Self>> {
        let servers = MAIL_SERVERS.lock().unwrap_or_else(PoisonError::into_inner);
        servers.get(&number).cloned()
    }
}

/// A typed job, which the dashboard can retry (a closure task it cannot):
/// fails while its mail server is down, succeeds once it is up and lets it
/// through.
#[derive(Debug, Serialize, Deserialize)]
struct Welcome {
    server: u64,
}

impl Job for Welcome {
    const NAME: &'static str = "welcome";
    type Error = &'static str;

    async fn run(&self, _context: TaskContext) -> Result<(), Self::Error> {
        let Some(server) = MailServer::find(self.server) else {
            return Ok(()); // its test is over
        };
        if !server.up.load(SeqCst) {
            return Err("the mail server is down");
        }
        let _ = server.gate.acquire().await;
        Ok(())
    }
}

/// A welcome job through mail server `server`, still down: added, never
/// retried by the queue, and failed.
async fn failed_welcome(decorum: &Decorum, server: u64) -> TaskHandle {
    let welcome = decorum
        .job(Welcome { server })
        .retry(RetryPolicy::never())
        .add()
        .await
        .unwrap();
    within("the welcome job's outcome", welcome.outcome())
        .await
        .unwrap_err();
    welcome
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

/// Holds the page's retries: each `POST …/retry` waits in
/// `window.heldRetries` until the test sends it (`window.heldRetries[i]()`);
/// `window.answeredRetries` counts those answered. What the page sends is
/// then seen, and sent, in the test's own time. Installed once per page.
const HOLD_RETRIES: &str = "(() => {
    if (window.heldRetries) return true;
    window.heldRetries = [];
    window.answeredRetries = 0;
    const send = window.fetch;
    window.fetch = (url, init) => {
        if (!(init && init.method === 'POST' && String(url).endsWith('/retry'))) return send(url, init);
        return new Promise((resolve, reject) => window.heldRetries.push(() => {
            const sent = send(url, init);
            sent.finally(() => { window.answeredRetries += 1; });
            sent.then(resolve, reject);
        }));
    };
    return true;
})()";

/// The Retry button of task `id` among the recent failures, in JavaScript.
fn retry_button(id: etiquette_core::TaskId) -> String {
    format!("document.querySelector('#failures [data-retry=\"{id}\"]')")
}

/// Task `id`, a welcome job failed (its mail server down), clicked twice on
/// the page with a re-render between the clicks, is retried once: the page
/// sends one retry, and the queue ran one more attempt. The page is at the
/// overview.
async fn a_double_click_retries_once(
    chromium: &mut Chromium,
    decorum: &Decorum,
    id: etiquette_core::TaskId,
) {
    let button = retry_button(id);
    chromium
        .until(
            "the twice-clicked job's Retry button",
            &format!("{button} !== null"),
        )
        .await;
    chromium.eval(HOLD_RETRIES).await;
    chromium.eval(&format!("{button}.click(), true")).await;
    chromium
        .until(
            "the first click's retry, held",
            "window.heldRetries.length === 1",
        )
        .await;
    // The failures are drawn again as a task ends: the second click lands
    // on the button drawn then.
    let other = decorum.add_task(async {}).await.unwrap();
    chromium
        .until(
            "a task that ended after the click, on the page (its lists redrawn)",
            &format!(
                "document.querySelector('#ended tr[data-task=\"{}\"]')",
                other.id()
            ),
        )
        .await;
    let disabled = chromium.eval(&format!("{button}.disabled")).await;
    assert_eq!(
        disabled, true,
        "the redrawn button, while its retry is in flight"
    );
    chromium.eval(&format!("{button}.click(), true")).await;
    // Sent in turn: the first; once its new life failed too (its mail
    // server is down), any other, which the queue would then take.
    chromium.eval("window.heldRetries[0](), true").await;
    chromium
        .until(
            "the page to say the twice-clicked job is back in line",
            &format!(
                "document.getElementById('notice').textContent === 'Task {id} is back in line.'"
            ),
        )
        .await;
    let again = within("finding the twice-clicked job", decorum.find(id)).await;
    let again = again.unwrap().expect("the retried job is known");
    within("the twice-clicked job's second life", again.outcome())
        .await
        .unwrap_err();
    let sent = chromium
        .eval("window.heldRetries.slice(1).forEach((send) => send()), window.heldRetries.length")
        .await;
    chromium
        .until(
            "every retry the page sent, answered",
            "window.answeredRetries === window.heldRetries.length",
        )
        .await;
    // What the queue did (a second retry, taken, would have put the job
    // back in line for a third attempt), then what the page sent.
    let status = again.status_now();
    assert_eq!(
        (status.name(), status.attempts()),
        ("failed", 2),
        "one retry, one more attempt"
    );
    assert_eq!(sent, 1, "retries the page sent for two clicks");
}

/// A retry the queue refuses says why: the page's retry of task `id`, a
/// welcome job failed through `mail` (down), held while the application
/// retries the job itself (it runs, held at its mail server's gate), is
/// answered 409, and the page shows the reason. The page is at the
/// overview.
async fn a_refused_retry_says_why(
    chromium: &mut Chromium,
    decorum: &Decorum,
    id: etiquette_core::TaskId,
    mail: &MailServer,
) {
    let button = retry_button(id);
    chromium
        .until(
            "the failed job's Retry button, enabled",
            &format!("{button} && !{button}.disabled"),
        )
        .await;
    chromium.eval(HOLD_RETRIES).await;
    let held = chromium.eval("window.heldRetries.length").await;
    chromium.eval(&format!("{button}.click(), true")).await;
    chromium
        .until(
            "the page's retry, held",
            &format!("window.heldRetries.length === {held} + 1"),
        )
        .await;
    mail.up.store(true, SeqCst);
    // Unfinished until the gate opens, whether in line or running.
    let running = within("the application's retry", decorum.retry_task(id))
        .await
        .unwrap();
    chromium
        .eval(&format!("window.heldRetries[{held}](), true"))
        .await;
    let refusal =
        format!("Task {id} was not retried: task {id} has not finished: there is nothing to retry");
    chromium
        .until(
            "the page to say why the job was not retried",
            &format!(
                "document.getElementById('notice').textContent === {refusal:?} \
                 && document.getElementById('notice').classList.contains('bad') \
                 && !document.getElementById('notice').hidden"
            ),
        )
        .await;
    mail.gate.close();
    within("the application's retry's outcome", running.outcome())
        .await
        .unwrap();
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
            (
                "/etiquette",
                Dashboard::new(&etiquette)
                    .allow_cancel(true)
                    .allow_retry(true),
            ),
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
    // And two typed jobs that failed for good, which can be retried: one
    // retried here, one left for the read-only page.
    let (mail_server, mail) = MailServer::start();
    let welcome = failed_welcome(&decorum, mail_server).await;
    let spare = failed_welcome(&decorum, mail_server).await;
    // One more, through a mail server of its own, for the page's retries
    // that the queue takes once, or refuses.
    let (clicked_server, clicked_mail) = MailServer::start();
    let clicked = failed_welcome(&decorum, clicked_server).await;

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
    chromium
        .until(
            "the welcome job's failure with its name and its Retry button",
            &format!(
                "document.querySelector('#failures li[data-task=\"{0}\"] [data-retry=\"{0}\"]') \
                 && document.querySelector('#failures li[data-task=\"{0}\"] .job')\
                 ?.textContent === 'welcome'",
                welcome.id()
            ),
        )
        .await;
    // A closure task cannot run again: its failure has no Retry button,
    // and no name.
    let offered = chromium
        .eval(&format!(
            "[...document.querySelectorAll('#failures li[data-task=\"{}\"]')]\
             .map((li) => [li.querySelectorAll('[data-retry]').length, li.querySelector('.job').textContent])",
            failing.id()
        ))
        .await;
    assert_eq!(
        offered,
        serde_json::json!([[0, ""]]),
        "the closure task's failure"
    );

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

    // Retry where it is allowed: the welcome job, its mail server now up,
    // retried with its button, runs again under the same id (held there
    // until the page shows it running), and succeeds.
    mail.up.store(true, SeqCst);
    let button = format!(
        "document.querySelector('#failures [data-retry=\"{}\"]')",
        welcome.id()
    );
    chromium.eval(&format!("{button}.click(), true")).await;
    chromium
        .until(
            "the page to say the welcome job is back in line",
            &format!(
                "document.getElementById('notice').textContent === 'Task {} is back in line.' \
                 && !document.getElementById('notice').classList.contains('bad')",
                welcome.id()
            ),
        )
        .await;
    chromium
        .until(
            "the retried job running again, its second attempt, on the page",
            &format!(
                "document.querySelector('#running tr[data-task=\"{}\"] .attempt')\
                 ?.textContent === '2'",
                welcome.id()
            ),
        )
        .await;
    let again = within("finding the retried job", decorum.find(welcome.id())).await;
    let again = again.unwrap().expect("the retried job is known");
    assert_eq!(again.id(), welcome.id());
    let status = again.status_now();
    assert_eq!((status.name(), status.attempts()), ("running", 2));
    mail.gate.close();
    within("the retried job's outcome", again.outcome())
        .await
        .unwrap();
    let status = again.status_now();
    assert_eq!((status.name(), status.attempts()), ("succeeded", 2));
    chromium
        .until(
            "the retried job among the finished, succeeded after 2 attempts",
            &format!(
                "[...document.querySelectorAll('#ended tr[data-task=\"{}\"]')].some((row) => \
                 row.children[1].textContent === 'succeeded' \
                 && row.children[2].textContent === '2')",
                welcome.id()
            ),
        )
        .await;
    chromium
        .until(
            "the retried job to leave the recent failures",
            &format!(
                "!document.querySelector('#failures li[data-task=\"{}\"]')",
                welcome.id()
            ),
        )
        .await;
    let answer = chromium
        .eval(&format!(
            "fetch('/etiquette/api/tasks/{}').then((r) => r.json()).then((t) => t.status)",
            welcome.id()
        ))
        .await;
    assert_eq!(answer["status"], "succeeded", "{answer}");
    assert_eq!(answer["attempts"], 2, "{answer}");

    a_double_click_retries_once(&mut chromium, &decorum, clicked.id()).await;
    a_refused_retry_says_why(&mut chromium, &decorum, clicked.id(), &clicked_mail).await;

    // Its page: the same id, two attempts, the retry by hand among its
    // events, and no Retry button now that it succeeded.
    chromium
        .open(&format!("{base}/etiquette#/tasks/{}", welcome.id()))
        .await;
    chromium
        .until(
            "the retried job's page, succeeded after 2 attempts",
            "document.getElementById('task-status').textContent === 'succeeded' \
             && document.getElementById('task-attempts').textContent === '2' \
             && document.getElementById('task-job').textContent === 'welcome' \
             && document.getElementById('task-retry').hidden \
             && document.getElementById('task-events').textContent\
             .includes('Retried by hand: back in line.')",
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

    // A closure task's page offers no Retry (its work is not kept, so it
    // cannot run again); a typed job's, failed, does, with its name.
    let closure = chromium
        .eval("[document.getElementById('task-retry').hidden, document.getElementById('task-job').textContent]")
        .await;
    assert_eq!(
        closure,
        serde_json::json!([true, ""]),
        "the closure task's page"
    );
    chromium
        .open(&format!("{base}/etiquette#/tasks/{}", spare.id()))
        .await;
    chromium
        .until(
            "the failed welcome job's page, named, with its Retry button",
            "document.getElementById('task-status').textContent === 'failed' \
             && document.getElementById('task-job').textContent === 'welcome' \
             && !document.getElementById('task-retry').hidden",
        )
        .await;

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
    // Retry where it is not allowed: the spare welcome job's failure is
    // shown without a button, and the endpoint refuses.
    chromium
        .until(
            "the spare welcome job's failure on the read-only page",
            &format!(
                "document.querySelector('#failures li[data-task=\"{}\"]')",
                spare.id()
            ),
        )
        .await;
    let buttons = chromium
        .eval("document.querySelectorAll('[data-retry], #task-retry:not([hidden])').length")
        .await;
    assert_eq!(buttons, 0, "no Retry button where retrying is off");
    let refused = chromium
        .eval(&format!(
            "fetch('/read-only/api/tasks/{}/retry', {{ method: 'POST', \
             headers: {{ 'x-etiquette-dashboard': 'retry' }} }}) \
             .then(async (r) => [r.status, await r.text()])",
            spare.id()
        ))
        .await;
    assert_eq!(refused[0], 403, "{refused}");
    assert!(
        refused[1].as_str().unwrap().contains("allow_retry(true)"),
        "{refused}"
    );
    assert_eq!(spare.status_now().name(), "failed", "it did not run again");
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

/// On PostgreSQL the page shows the jobs stored across every process, in
/// a section the in-memory walk-through never shows: a job due in an hour
/// sits in the table, not in this process's counters, and is counted
/// there.
pub(crate) async fn stored_jobs_in_chromium(
    serve: impl Fn(u16, Vec<(&'static str, Dashboard<Postgres>)>) -> RunningServer,
) {
    use crate::suite::{Line, OnPostgres};

    let _one_at_a_time = ONE_BROWSER.lock().await;
    let port = crate::socket::free_port();
    let (etiquette, _database) = OnPostgres::queue(1).await;
    let server = serve(port, vec![("/etiquette", Dashboard::new(&etiquette))]);
    let (probe, _signals) = Probe::new();
    let query = etiquette_tests::JobQuery {
        n: 1,
        delay_ms: Some(3_600_000),
        ..etiquette_tests::JobQuery::default()
    };
    let decorum = etiquette.decorum();
    let added = etiquette_tests::add_job(&decorum, &probe, query);
    within("adding a job due in an hour", added).await.unwrap();

    let mut chromium = Chromium::start(1280, 900).await;
    chromium
        .open(&format!("http://127.0.0.1:{port}/etiquette"))
        .await;
    chromium
        .until("the page to go live", &state_is(&["live"]))
        .await;
    chromium
        .until(
            "the stored jobs' section to count the scheduled job",
            "!document.getElementById('stored').hidden \
             && document.getElementById('stored-scheduled').textContent === '1' \
             && document.getElementById('stored-queued').textContent === '0'",
        )
        .await;
    // This process's own counters never saw it.
    let own = chromium
        .eval("document.getElementById('stat-scheduled').textContent")
        .await;
    assert_eq!(own, "0", "this process's scheduled counter");
    etiquette.close_event_streams();
    server.shut_down().await;
}
