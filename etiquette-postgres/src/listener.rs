//! One LISTEN connection per process, however many workers it runs, kept
//! alive for the process's life: it wakes the claimer when a job is added
//! (the NOTIFY is sent in the adding transaction, so it arrives once the job
//! is visible), and whenever the connection comes back after it was lost.
//! Notifications sent while it was gone are lost, so a (re)connection wakes
//! the claimer too, which then polls: a listener that silently never comes
//! back (graphile-worker #541) cannot happen here. TCP keep-alives notice a
//! server that vanished without closing the socket.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::connection::Pause;

/// A running listener; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Notified (one stored permit) on every notification on the channel,
    /// and on every (re)connection.
    pub(crate) wake: Arc<Notify>,
    /// Connections made so far, the first included (read by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) connections: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening on `channel` (a plain identifier) with `config`, on
    /// the current tokio runtime; and, with `events`, on its channel too,
    /// relaying each payload heard there to its sender (task events from
    /// other processes).
    pub(crate) fn start(mut config: Config, channel: &str, events: Option<Events>) -> Self {
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        let wake = Arc::new(Notify::new());
        let connections = Arc::new(AtomicU64::new(0));
        let mut listen = format!("LISTEN \"{channel}\";");
        if let Some(events) = &events {
            listen.push_str(&format!(" LISTEN \"{}\";", events.channel));
        }
        let task = tokio::spawn(keep_listening(
            config,
            listen,
            (Arc::clone(&wake), events),
            Arc::clone(&connections),
        ));
        Self {
            wake,
            connections,
            task,
        }
    }
}

/// Where the payloads heard on the events channel go.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    pub(crate) channel: String,
    pub(crate) heard: mpsc::UnboundedSender<String>,
}

async fn keep_listening(
    config: Config,
    listen: String,
    (wake, events): (Arc<Notify>, Option<Events>),
    connections: Arc<AtomicU64>,
) {
    let mut pause = Pause::new();
    loop {
        match listen_once(&config, &listen, (&wake, events.as_ref()), &connections).await {
            // It was up: reconnect at once, at first.
            Ok(()) => pause.reset(),
            Err(error) => {
                let backoff = pause.next();
                tracing::warn!(%error, ?backoff, "the LISTEN connection failed; reconnecting");
                pause.wait().await;
            }
        }
    }
}

/// Connects, listens, and relays notifications until the connection ends.
async fn listen_once(
    config: &Config,
    listen: &str,
    (wake, events): (&Notify, Option<&Events>),
    connections: &AtomicU64,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection is driven here, not by its `Future`, to see its
    // notifications; they are relayed through a channel that closes when
    // the connection ends.
    let (relay, mut notified) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if relay.send(notification).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let listening = client.batch_execute(listen).await;
    if let Err(error) = listening {
        driver.abort();
        return Err(error);
    }
    connections.fetch_add(1, SeqCst);
    // Whatever was sent while no connection listened is lost: poll.
    wake.notify_one();
    while let Some(notification) = notified.recv().await {
        match events {
            Some(events) if notification.channel() == events.channel => {
                let _ = events.heard.send(notification.payload().to_owned());
            }
            _ => wake.notify_one(),
        }
    }
    drop(client);
    tracing::warn!("the LISTEN connection was lost; reconnecting");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::TempServer;

    const CHANNEL: &str = "etiquette_jobs";

    async fn woken_until(listener: &Listener, what: &str, done: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !done() {
                listener.wake.notified().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("waited more than 10 s for {what}"));
    }

    async fn notify(server: &TempServer) {
        let client = server.connect("postgres").await.unwrap();
        client
            .batch_execute(&format!("NOTIFY {CHANNEL}"))
            .await
            .unwrap();
    }

    /// Waits for one wake-up caused by a notification sent after the
    /// listener settled.
    async fn notification_arrives(server: &TempServer, listener: &Listener) {
        // Drop a permit left by earlier wake-ups.
        let _ = tokio::time::timeout(Duration::from_millis(1), listener.wake.notified()).await;
        notify(server).await;
        tokio::time::timeout(Duration::from_secs(10), listener.wake.notified())
            .await
            .expect("waited more than 10 s for a notification to wake the listener");
    }

    fn listener(server: &TempServer) -> Listener {
        Listener::start(server.url("postgres").parse().unwrap(), CHANNEL, None)
    }

    /// A server, and a listener on it once it listens.
    async fn listening() -> (TempServer, Listener, Arc<AtomicU64>) {
        let server = TempServer::start().unwrap_or_else(|error| panic!("{error}"));
        let listener = listener(&server);
        let connections = Arc::clone(&listener.connections);
        woken_until(&listener, "the first connection", || {
            connections.load(SeqCst) == 1
        })
        .await;
        (server, listener, connections)
    }

    #[tokio::test]
    async fn a_notification_wakes_the_listener() {
        let (server, listener, _) = listening().await;
        notification_arrives(&server, &listener).await;
    }

    #[tokio::test]
    async fn a_killed_connection_comes_back_wakes_the_claimer_and_listens_again() {
        let (server, listener, connections) = listening().await;
        let admin = server.connect("postgres").await.unwrap();
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(killed.len(), 1, "one LISTEN connection per listener");
        woken_until(&listener, "the second connection", || {
            connections.load(SeqCst) == 2
        })
        .await;
        notification_arrives(&server, &listener).await;
    }

    #[tokio::test]
    async fn a_restarted_server_is_listened_to_again() {
        let (server, listener, connections) = listening().await;
        server.restart().unwrap_or_else(|error| panic!("{error}"));
        woken_until(&listener, "a connection to the restarted server", || {
            connections.load(SeqCst) == 2
        })
        .await;
        notification_arrives(&server, &listener).await;
    }
}
