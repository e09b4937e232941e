//! Headless Chromium driven over the DevTools protocol through a pipe
//! (`--remote-debugging-pipe`: commands in on its descriptor 3, answers
//! out on 4, each a JSON text ended by a NUL byte), one page at a time:
//! enough to click the jobs page's button and read what it shows. Every
//! wait is bounded, naming what it waited for.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::common::within;

/// How long one step in the browser may take: far longer than any takes,
/// short enough to fail in seconds.
const STEP: Duration = Duration::from_secs(10);

/// How the tests run Chromium: headless, quiet, and talking to nothing
/// but the example.
pub(crate) const HEADLESS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// A headless Chromium with one page open.
pub(crate) struct Chromium {
    // Killed when dropped.
    _child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    session: Option<String>,
    next_id: u64,
    _profile: TempDir,
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Chromium {
    /// Starts Chromium (`$CHROMIUM`, or `/usr/bin/chromium`) with a blank
    /// page.
    pub(crate) async fn start() -> Self {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = std::env::temp_dir().join(format!(
            "etiquette-jobs-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        // The shell hands Chromium our stdin as its descriptor 3 and our
        // stdout as its 4, the pipe's two ends.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(&binary)
            .args(HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {binary} through sh: {error}"));
        let mut chromium = Self {
            commands: child.stdin.take().unwrap(),
            answers: BufReader::new(child.stdout.take().unwrap()),
            _child: child,
            session: None,
            next_id: 1,
            _profile: TempDir(profile),
        };
        let target = chromium
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target = target["targetId"].as_str().unwrap().to_owned();
        let attached = chromium
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await;
        chromium.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        chromium
    }

    /// Sends one command (to the page, once attached) and returns its
    /// result, skipping the events that come meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut message = message.to_string().into_bytes();
        message.push(0);
        let what = format!("Chromium's answer to {method}");
        let (commands, answers) = (&mut self.commands, &mut self.answers);
        within(STEP, &what, async {
            commands.write_all(&message).await.unwrap();
            loop {
                let mut answer = Vec::new();
                answers.read_until(0, &mut answer).await.unwrap();
                assert_eq!(answer.pop(), Some(0), "Chromium closed its pipe");
                let answer: Value = serde_json::from_slice(&answer).unwrap();
                if answer["id"] == json!(id) {
                    if let Some(error) = answer.get("error") {
                        panic!("{method} failed: {error}");
                    }
                    return answer["result"].clone();
                }
            }
        })
        .await
    }

    /// Opens `url` and waits until its document has loaded.
    pub(crate) async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        let loaded = format!("document.readyState === 'complete' && location.href === {url:?}");
        self.until(&format!("{url} to load"), &loaded).await;
    }

    /// The value of the JavaScript `expression` in the page (awaited if a
    /// promise).
    pub(crate) async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({
            "expression": expression, "returnByValue": true, "awaitPromise": true,
        });
        let result = self.call("Runtime.evaluate", params).await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page, polling, and fails
    /// after [`STEP`] naming `what` it waited for and what the page shows.
    pub(crate) async fn until(&mut self, what: &str, expression: &str) -> Value {
        let bounded = tokio::time::timeout(STEP, async {
            loop {
                let value = self.eval(expression).await;
                if !matches!(value, Value::Null | Value::Bool(false))
                    && value != json!(0)
                    && value != json!("")
                {
                    return value;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        match bounded.await {
            Ok(value) => value,
            Err(_) => {
                let shown = self.eval("document.body.innerText").await;
                panic!("waited more than {STEP:?} for {what}; the page shows: {shown}")
            }
        }
    }
}
