//! What the examples' end-to-end tests share: a bound on every wait, and
//! small helpers to start an example and to stop it. (A folder, so that
//! cargo does not take it for a test binary of its own.)

use std::future::IntoFuture;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Awaits `future` for at most `bound`, failing the test with a message
/// naming `what` it waited for.
pub(crate) async fn within<F: IntoFuture>(bound: Duration, what: &str, future: F) -> F::Output {
    tokio::time::timeout(bound, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {bound:?} waiting for {what}"))
}

/// The example's name, for messages: its binary's file name.
pub(crate) fn name(binary: &str) -> &str {
    Path::new(binary)
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or(binary)
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the example `binary` on `port`, with `env` besides, its stdout
/// piped and uncoloured, and waits at most `bound` until it says it is
/// listening. Returns it with the lines it logged until then.
pub(crate) async fn start_listening(
    binary: &str,
    port: u16,
    env: &[(&str, &str)],
    bound: Duration,
) -> (Child, Vec<String>) {
    let mut child = Command::new(binary)
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.as_mut().unwrap();
    let mut seen = Vec::new();
    let what = format!("{} to say it is listening", name(binary));
    let listening = within(bound, &what, async {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await.unwrap() {
            let listening = line.contains(&format!("listening on http://127.0.0.1:{port}"));
            seen.push(line);
            if listening {
                return true;
            }
        }
        false
    })
    .await;
    assert!(listening, "{binary} exited before listening: {seen:#?}");
    (child, seen)
}

/// Sends the example SIGTERM, as a service manager stopping it would,
/// waiting at most `bound` for `kill` to do it.
pub(crate) async fn send_sigterm(child: &Child, bound: Duration) {
    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status();
    let killed = within(bound, "kill -TERM", kill).await;
    assert!(killed.unwrap().success());
}
