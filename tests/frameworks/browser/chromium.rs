//! Headless Chromium driven over the DevTools protocol: started with a
//! debugging port, spoken to over one WebSocket (a minimal client, enough
//! for the protocol's text messages), one page at a time. Every wait is
//! bounded, naming what it waited for.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::suite::within;

/// How long one step in the browser may take: far longer than any takes,
/// short enough to fail in seconds.
const STEP: Duration = Duration::from_secs(20);

/// A headless Chromium with one page open.
pub(crate) struct Chromium {
    // Killed when dropped.
    _child: Child,
    socket: TcpStream,
    session: String,
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
    /// page of `width` × `height` CSS pixels.
    pub(crate) async fn start(width: u32, height: u32) -> Self {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = std::env::temp_dir().join(format!(
            "etiquette-dashboard-chromium-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {binary}: {error}"));
        let stderr = child.stderr.take().unwrap();
        let endpoint = within("Chromium to open its DevTools port", async {
            let mut lines = BufReader::new(stderr).lines();
            loop {
                let line = lines.next_line().await.unwrap();
                let line = line.expect("Chromium exited before opening its DevTools port");
                if let Some(url) = line.split("DevTools listening on ").nth(1) {
                    // Keep draining, so that Chromium never blocks on it.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return url.trim().to_owned();
                }
            }
        })
        .await;
        let socket = within("the DevTools WebSocket", connect(&endpoint)).await;
        let mut chromium = Self {
            _child: child,
            socket,
            session: String::new(),
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
        chromium.session = attached["sessionId"].as_str().unwrap().to_owned();
        chromium.resize(width, height).await;
        chromium
    }

    /// Sends one command (to the page, once attached) and returns its
    /// result, skipping the events that come meanwhile.
    pub(crate) async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let what = format!("Chromium's answer to {method}");
        let socket = &mut self.socket;
        within(what, async {
            send_text(socket, &message.to_string()).await;
            loop {
                let answer: Value = serde_json::from_str(&read_text(socket).await).unwrap();
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

    /// Sets the viewport to `width` × `height` CSS pixels.
    pub(crate) async fn resize(&mut self, width: u32, height: u32) {
        let metrics = json!({
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        });
        self.call("Emulation.setDeviceMetricsOverride", metrics)
            .await;
    }

    /// Whether the page is told the visitor prefers a dark scheme.
    pub(crate) async fn prefer_dark(&mut self, dark: bool) {
        let scheme = if dark { "dark" } else { "light" };
        let features = json!([{ "name": "prefers-color-scheme", "value": scheme }]);
        self.call(
            "Emulation.setEmulatedMedia",
            json!({ "features": features }),
        )
        .await;
        self.eval("new Promise((done) => requestAnimationFrame(() => done(true)))")
            .await;
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
    /// after [`STEP`] naming `what` it waited for.
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
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        match bounded.await {
            Ok(value) => value,
            Err(_) => {
                let state = self
                    .eval("document.getElementById('connection')?.dataset.state")
                    .await;
                panic!("waited more than {STEP:?} for {what} (connection: {state})")
            }
        }
    }

    /// A PNG of the whole page at its current width.
    pub(crate) async fn screenshot(&mut self) -> Vec<u8> {
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        decode_base64(shot["data"].as_str().unwrap())
    }
}

/// Opens a WebSocket to `url` (`ws://host:port/path`).
async fn connect(url: &str) -> TcpStream {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    let (host, path) = rest.split_once('/').unwrap();
    let mut socket = TcpStream::connect(host).await.unwrap();
    // The key is the RFC's example: a test client need not prove anything.
    let handshake = format!(
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(socket.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    socket
}

/// Sends one text message, masked as a client must.
async fn send_text(socket: &mut TcpStream, text: &str) {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let payload = text.as_bytes();
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ MASK[i % 4]),
    );
    socket.write_all(&frame).await.unwrap();
}

/// Reads one whole text message, joining its fragments.
async fn read_text(socket: &mut TcpStream) -> String {
    let mut message = Vec::new();
    loop {
        let head = [
            socket.read_u8().await.unwrap(),
            socket.read_u8().await.unwrap(),
        ];
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        let length = match head[1] & 0x7f {
            126 => u64::from(socket.read_u16().await.unwrap()),
            127 => socket.read_u64().await.unwrap(),
            n => u64::from(n),
        };
        let mut payload = vec![0; usize::try_from(length).unwrap()];
        socket.read_exact(&mut payload).await.unwrap();
        assert_ne!(opcode, 0x8, "Chromium closed the DevTools WebSocket");
        if opcode == 0x9 || opcode == 0xA {
            continue; // pings and pongs carry nothing for us
        }
        message.extend_from_slice(&payload);
        if fin {
            return String::from_utf8(message).unwrap();
        }
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut bytes = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        let count = chunk.len() * 6 / 8;
        bytes.extend_from_slice(&n.to_be_bytes()[1..=count]);
    }
    bytes
}

#[test]
fn base64_decodes() {
    assert_eq!(decode_base64("aGVsbG8="), b"hello");
    assert_eq!(decode_base64("aGVsbG8hIQ=="), b"hello!!");
    assert_eq!(decode_base64("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
}
