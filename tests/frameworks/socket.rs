//! What the end-to-end runs share: requests over a real socket, through
//! `reqwest`, to a server each framework file binds and spawns its own way,
//! and that server's graceful shutdown. Every wait is bounded by [`within`].

use std::fmt::{Debug, Display};
use std::future::Future;
use std::io;

use etiquette_core::Etiquette;
use etiquette_tests::Probe;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::suite::within;

/// Where the end-to-end servers listen: any free port on the loopback.
pub(crate) const LOOPBACK: &str = "127.0.0.1:0";

/// A free port on the loopback, for a server that must come back on the
/// same one.
pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(LOOPBACK).unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener on 127.0.0.1:`port`, which may be bound again as soon as its
/// server has stopped (`SO_REUSEADDR`: its closed connections may still be
/// in `TIME_WAIT`).
pub(crate) fn listener(port: u16) -> tokio::net::TcpListener {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap_or_else(|error| panic!("binding 127.0.0.1:{port}: {error}"));
    socket.listen(1024).unwrap()
}

/// Awaits a framework's `bind` of [`LOOPBACK`], failing if it fails or
/// takes more than 5 seconds.
pub(crate) async fn bind<L, E: Debug>(binding: impl Future<Output = Result<L, E>>) -> L {
    let what = format!("binding a listener on {LOOPBACK}");
    within(what, binding).await.unwrap()
}

/// The sender that tells a server to shut down gracefully, and the
/// future the server is given to learn it.
pub(crate) fn shutdown_signal() -> (
    oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = oneshot::channel();
    (stop, async move {
        let _ = stopped.await;
    })
}

/// A server of the suite's app on a real socket, in a task of its own.
pub(crate) struct RunningServer {
    /// Names it in failures, as "the axum server".
    name: &'static str,
    /// `http://` and the address it listens on.
    base: String,
    /// The sender of its [`shutdown_signal`].
    stop: oneshot::Sender<()>,
    /// The task serving it; it ends once the server has shut down.
    task: JoinHandle<io::Result<()>>,
}

impl RunningServer {
    /// Spawns `serving`, the server `name` listening at `base`, which shuts
    /// down gracefully once `stop` is sent.
    pub(crate) fn spawn(
        name: &'static str,
        base: String,
        stop: oneshot::Sender<()>,
        serving: impl Future<Output = io::Result<()>> + Send + 'static,
    ) -> Self {
        let task = tokio::spawn(serving);
        Self {
            name,
            base,
            stop,
            task,
        }
    }

    /// Tells the server to stop, then waits until it has shut down.
    pub(crate) async fn shut_down(self) {
        self.stop.send(()).expect("the server is still serving");
        let what = format!("{} to shut down gracefully", self.name);
        ended(what, self.task).await;
    }
}

/// Waits for a server's task to end, failing unless the server ended
/// without an error.
pub(crate) async fn ended(what: impl Display, task: JoinHandle<io::Result<()>>) {
    within(what, task).await.unwrap().unwrap();
}

/// GET `uri` over the socket, failing unless it is answered 200 within 5
/// seconds; the body is left to the caller.
pub(crate) async fn get_200(http: &reqwest::Client, uri: &str) -> reqwest::Response {
    let reply = within(format!("the response to GET {uri}"), http.get(uri).send()).await;
    let reply = reply.unwrap();
    assert_eq!(reply.status(), 200, "GET {uri}");
    reply
}

/// The end-to-end run once `server` serves the app on `etiquette` and
/// `probe`: `splat(n)` for each `n` below 20, each answered `OK`, then a
/// graceful shutdown, after which the release finds every task run.
pub(crate) async fn splat_then_drain(
    server: RunningServer,
    etiquette: &Etiquette,
    probe: &Probe,
    splat: fn(u64) -> String,
) {
    let http = reqwest::Client::new();
    for n in 0..20 {
        let uri = format!("{}{}", server.base, splat(n));
        let reply = get_200(&http, &uri).await;
        let body = within(format!("the body of GET {uri}"), reply.text()).await;
        assert_eq!(body.unwrap(), "OK");
    }
    server.shut_down().await;

    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(report.completed, 20);
    assert_eq!(probe.safe(), 190);
}
