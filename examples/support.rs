//! What every example shares: its settings, its logs, its shutdown, its
//! tasks, and how each framework serves it. Each example reads its own
//! handlers and routes top to bottom; what is the same for all of them is
//! here, once.

// Every example compiles this whole file but uses only its own part (its
// framework's serving, its kind of task): the rest is dead code there.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etiquette_core::backend::Backend;
use etiquette_core::{Builder, Etiquette, Job, TaskContext};
use etiquette_postgres::{Jobs, Postgres};
use serde::{Deserialize, Serialize};

/// The variable `name` of the environment, parsed, or `default` when it is
/// unset or does not parse.
fn env_or<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The PostgreSQL backend when `DATABASE_URL` is set
/// (`postgres://user:password@host:port/database`; `scripts/postgres.sh`
/// starts a throwaway server), `None` for the in-memory queue otherwise.
/// Its leases last `LEASE_MS` (30 s by default): a process that dies has
/// its jobs run by another this long after.
pub(crate) async fn postgres() -> Result<Option<Postgres>, Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Ok(None);
    };
    let jobs = Jobs::new()
        .register::<Count>()?
        .register::<SleepThreeSeconds>()?
        .register::<TenSteps>()?;
    let lease = Duration::from_millis(env_or("LEASE_MS", 30_000));
    let postgres = Postgres::builder(&url, jobs)?
        .lease(lease)
        .connect()
        .await?;
    tracing::info!("jobs kept in PostgreSQL, shared with every process on the database");
    Ok(Some(postgres))
}

/// How long, after the server stops, accepted tasks get to finish:
/// `DRAIN_SECS`, 30 s by default.
pub(crate) fn drain_deadline() -> Duration {
    Duration::from_secs(env_or("DRAIN_SECS", 30))
}

/// 127.0.0.1, on the port in `PORT` (8000 when unset).
pub(crate) fn address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], env_or("PORT", 8000)))
}

/// Logs to stdout at `info`, or as `RUST_LOG` says.
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled: call it before
/// announcing that the server listens, or a signal sent in between would
/// kill the process instead of stopping it gracefully.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
        let mut interrupt = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
        async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
    };
    #[cfg(not(unix))]
    let signals = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    async move {
        signals.await;
        tracing::info!("shutting down: no new requests, draining accepted tasks");
    }
}

/// `shutdown`, then the end of the queue's event streams: a server's
/// graceful shutdown waits for its open connections, and an open event
/// stream would hold it for ever.
pub(crate) async fn closing_event_streams<B: Backend>(
    shutdown: impl Future<Output = ()>,
    etiquette: Etiquette<B>,
) {
    shutdown.await;
    etiquette.close_event_streams();
}

/// Drains the queue once the server has stopped, giving its tasks at most
/// [`drain_deadline`], and logs the report: the last line an example logs.
pub(crate) async fn release<B: Backend>(etiquette: &Etiquette<B>) {
    let report = etiquette.release_timeout(drain_deadline()).await;
    tracing::info!("released: {report}");
}

/// The count the counter examples' jobs increment (one per process).
static COUNT: AtomicU64 = AtomicU64::new(0);

/// One increment of the count, logged.
pub(crate) fn count() {
    let current_count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    tracing::info!(current_count);
}

/// The counter examples' job: one increment of the count.
///
/// A typed job (data with a name), not a closure: the PostgreSQL backend
/// stores it, and whichever process claims it runs it.
#[derive(Serialize, Deserialize)]
pub(crate) struct Count;

impl Job for Count {
    const NAME: &'static str = "count";
    type Error = Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Infallible> {
        count();
        Ok(())
    }
}

/// The sleeper examples' job: three seconds of sleep, then a log line.
#[derive(Serialize, Deserialize)]
pub(crate) struct SleepThreeSeconds;

impl Job for SleepThreeSeconds {
    const NAME: &'static str = "sleep_three_seconds";
    type Error = Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Infallible> {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tracing::info!("task done");
        Ok(())
    }
}

/// The page every jobs example serves at `/`: a button starting a job and a
/// progress bar following its events.
pub(crate) const JOBS_PAGE: &str = include_str!("jobs.html");

/// The jobs examples' queue: four jobs at a time, and the last 1024 events
/// kept, so that a stream opened after its job started, or resumed with
/// `Last-Event-ID`, replays what it missed.
pub(crate) fn jobs_queue() -> Builder {
    Etiquette::builder()
        .max_concurrent_tasks(4)
        .event_buffer(1024)
}

/// How long each of a job's ten steps takes: `STEP_MS`, 300 ms by default.
pub(crate) fn step() -> Duration {
    Duration::from_millis(env_or("STEP_MS", 300))
}

/// The jobs examples' job: ten steps, reporting its progress after each.
#[derive(Serialize, Deserialize)]
pub(crate) struct TenSteps;

impl Job for TenSteps {
    const NAME: &'static str = "ten_steps";
    type Error = Infallible;

    async fn run(&self, context: TaskContext) -> Result<(), Infallible> {
        const STEPS: u32 = 10;
        for step in 1..=STEPS {
            tokio::time::sleep(self::step()).await;
            context.report(
                step as f32 / STEPS as f32,
                format!("step {step} of {STEPS}"),
            );
        }
        Ok(())
    }
}

/// Serving with axum, and the status route its examples share.
pub(crate) mod axum {
    use std::future::Future;

    use ::axum::extract::Path;
    use ::axum::http::StatusCode;
    use ::axum::{Json, Router};
    use etiquette_axum::core::backend::Backend;
    use etiquette_axum::{Decorum, TaskId, TaskStatus};

    /// Serves `app` on [`address`](super::address) until `shutdown`
    /// resolves, then waits for the open connections (axum sets them no
    /// deadline: release the queue with one afterwards).
    pub(crate) async fn serve(
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(super::address()).await?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        ::axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        Path(id): Path<TaskId>,
    ) -> Result<Json<TaskStatus>, StatusCode> {
        let status = decorum.status(id).await;
        let status = status.map_err(|_unreachable| StatusCode::SERVICE_UNAVAILABLE)?;
        Ok(Json(status.ok_or(StatusCode::NOT_FOUND)?))
    }
}

/// Serving with actix-web, and the status route its examples share.
pub(crate) mod actix {
    use std::future::Future;

    use actix_web::{App, HttpResponse, HttpServer, web};
    use etiquette_actix::core::backend::Backend;
    use etiquette_actix::{Decorum, TaskId};

    /// Serves the app that `routes` configures on
    /// [`address`](super::address) until `shutdown` resolves. `routes` runs
    /// once per worker, each of which builds an app of its own.
    pub(crate) async fn serve(
        routes: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .shutdown_signal(shutdown)
            .bind(super::address())?;
        tracing::info!("listening on http://{}", server.addrs()[0]);
        server.run().await
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        id: web::Path<TaskId>,
    ) -> HttpResponse {
        match decorum.status(*id).await {
            Ok(Some(status)) => HttpResponse::Ok().json(status),
            Ok(None) => HttpResponse::NotFound().finish(),
            Err(_unreachable) => HttpResponse::ServiceUnavailable().finish(),
        }
    }
}

/// Serving with poem, and the status route its examples share.
pub(crate) mod poem {
    use std::future::Future;
    use std::time::Duration;

    use ::poem::error::NotFoundError;
    use ::poem::listener::{Acceptor as _, Listener as _, TcpListener};
    use ::poem::web::{Json, Path};
    use ::poem::{IntoEndpoint, Server, handler};
    use etiquette_poem::core::backend::Backend;
    use etiquette_poem::{Decorum, TaskId, TaskStatus};

    /// Serves `app` on [`address`](super::address) until `shutdown`
    /// resolves, then gives the open connections ten seconds.
    pub(crate) async fn serve(
        app: impl IntoEndpoint<Endpoint: 'static>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        // Bound before logging, so the log never announces a port not yet open.
        let acceptor = TcpListener::bind(super::address()).into_acceptor().await?;
        let local = acceptor.local_addr();
        if let Some(address) = local.first().and_then(|address| address.as_socket_addr()) {
            tracing::info!("listening on http://{address}");
        }
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
            .await
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    #[handler]
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        Path(id): Path<TaskId>,
    ) -> ::poem::Result<Json<TaskStatus>> {
        let status = decorum.status(id).await.map_err(|_unreachable| {
            ::poem::Error::from_status(::poem::http::StatusCode::SERVICE_UNAVAILABLE)
        })?;
        Ok(Json(status.ok_or(NotFoundError)?))
    }
}
