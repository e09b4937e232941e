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
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etiquette_core::backend::Backend;
use etiquette_core::{Builder, Etiquette, Job, TaskContext};
use etiquette_postgres::{Jobs, Postgres};
use serde::{Deserialize, Serialize};

/// Why an example stops: shown with its causes, as `main`'s error (not as
/// the `Debug` of an error type, which names no variable and no address).
pub(crate) struct Failed(Box<dyn std::error::Error + Send + Sync>);

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for Failed {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl std::fmt::Debug for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The examples' settings, read from the environment once, at start.
struct Settings {
    address: SocketAddr,
    drain: Duration,
    step: Duration,
    sleep: Duration,
    lease: Duration,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings {
        address: SocketAddr::from(([127, 0, 0, 1], 8000)),
        drain: Duration::from_secs(30),
        step: Duration::from_millis(300),
        sleep: Duration::from_secs(3),
        lease: Duration::from_secs(30),
    })
}

/// The variable `name`, or `default` when it is unset; a value that does
/// not parse, or that `accepts` refuses, stops the example with a message
/// naming the variable, its value and what it takes (`takes`).
fn setting<T: FromStr>(
    name: &str,
    default: T,
    (accepts, takes): (fn(&T) -> bool, &str),
) -> Result<T, Failed> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(default),
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{name}={value:?} is not valid: it takes {takes}").into())
        }
        Ok(value) => value
            .parse()
            .ok()
            .filter(accepts)
            .ok_or_else(|| format!("{name}={value:?} is not valid: it takes {takes}").into()),
    }
}

/// Starts an example: its logs, its settings (`PORT`, `DRAIN_SECS`,
/// `STEP_MS`, `SLEEP_MS`, `LEASE_MS`, each checked), and its stop signal. The signal's
/// handlers are installed here, before the server announces that it
/// listens: a signal sent in between would otherwise kill the process
/// instead of stopping it.
pub(crate) fn start() -> Result<Stopping, Failed> {
    init_tracing();
    let port = setting(
        "PORT",
        8000_u16,
        (|&port| port > 0, "a port from 1 to 65535"),
    )?;
    let drain = setting(
        "DRAIN_SECS",
        30,
        (|&secs| secs <= 86_400, "seconds from 0 to 86400"),
    )?;
    let step = setting(
        "STEP_MS",
        300,
        (|&ms| ms <= 3_600_000, "milliseconds from 0 to 3600000"),
    )?;
    let sleep = setting(
        "SLEEP_MS",
        3_000,
        (|&ms| ms <= 3_600_000, "milliseconds from 0 to 3600000"),
    )?;
    let lease = setting(
        "LEASE_MS",
        30_000,
        (
            |&ms| (100..=86_400_000).contains(&ms),
            "milliseconds from 100 to 86400000",
        ),
    )?;
    let _ = SETTINGS.set(Settings {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        drain: Duration::from_secs(drain),
        step: Duration::from_millis(step),
        sleep: Duration::from_millis(sleep),
        lease: Duration::from_millis(lease),
    });
    Ok(Stopping::on_signals())
}

/// The PostgreSQL backend when `DATABASE_URL` is set
/// (`postgres://user:password@host:port/database`; `scripts/postgres.sh`
/// starts a throwaway server), `None` for the in-memory queue otherwise.
/// Its leases last `LEASE_MS` (30 s by default): a process that dies has
/// its jobs run by another this long after.
pub(crate) async fn postgres() -> Result<Option<Postgres>, Failed> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return Ok(None);
    };
    let jobs = Jobs::new()
        .register::<Count>()?
        .register::<SleepThreeSeconds>()?
        .register::<TenSteps>()?;
    let postgres = Postgres::builder(&url, jobs)?.lease(settings().lease);
    let postgres = postgres.connect().await?;
    tracing::info!("jobs kept in PostgreSQL, shared with every process on the database");
    Ok(Some(postgres))
}

/// An example's app, written once for any backend: its routes on the
/// queue `main` built, served until the stop signal (see [`run`]). A trait
/// with a generic method, as a closure cannot be generic over the backend:
/// each example implements it for a small struct of its own.
pub(crate) trait App {
    /// Serves the app on `etiquette` until `stopping`, then stops it all.
    async fn serve<B: Backend>(
        self,
        etiquette: Etiquette<B>,
        stopping: Stopping,
    ) -> Result<(), Failed>;
}

/// Builds `queue` on PostgreSQL when `DATABASE_URL` is set ([`postgres`]),
/// in memory otherwise, and serves `app` on it until `stopping`.
pub(crate) async fn build_and_serve(
    queue: Builder,
    app: impl App,
    stopping: Stopping,
) -> Result<(), Failed> {
    match postgres().await? {
        None => app.serve(queue.build()?, stopping).await,
        Some(postgres) => app.serve(queue.build_on(postgres)?, stopping).await,
    }
}

/// How long the stop may take, from the signal: `DRAIN_SECS`, 30 s by
/// default. Open connections and accepted tasks share it.
pub(crate) fn drain_deadline() -> Duration {
    settings().drain
}

/// 127.0.0.1, on the port in `PORT` (8000 when unset).
pub(crate) fn address() -> SocketAddr {
    settings().address
}

/// Binds the listening socket, saying which address could not be bound.
fn bind_error(error: std::io::Error) -> std::io::Error {
    let message = format!("cannot listen on {}: {error}", address());
    std::io::Error::new(error.kind(), message)
}

/// Logs to stdout at `info`, or as `RUST_LOG` says; in colour only on a
/// terminal.
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(std::io::stdout)
        .init();
}

/// The stop signal (SIGTERM or Ctrl-C), shared: each clone resolves
/// [`wait`](Self::wait) once it arrived.
#[derive(Clone)]
pub(crate) struct Stopping(tokio::sync::watch::Receiver<bool>);

impl Stopping {
    fn on_signals() -> Self {
        #[cfg(unix)]
        let signals = {
            use tokio::signal::unix::{SignalKind, signal};
            let mut terminate =
                signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
            let mut interrupt =
                signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
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
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            signals.await;
            tracing::info!(
                "stopping: no new tasks; open requests and accepted tasks get until the deadline"
            );
            let _ = stop.send(true);
        });
        Self(stopping)
    }

    /// Resolves once the signal arrived.
    pub(crate) async fn wait(mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Runs `serving` (a server that stops gracefully once `stopping` says so)
/// until the signal, then stops it all within one deadline
/// ([`drain_deadline`]), counted from the signal:
///
/// * the queue's intake closes at once: a request waiting for room is
///   answered 503 now, not accepted after the signal and cancelled at the
///   deadline;
/// * its event streams end, or they would hold the server open;
/// * open connections and the drain of accepted tasks both get until the
///   deadline: a client that never finishes its request cannot hold the
///   process past it;
///
/// then logs the release report: the last line an example logs.
pub(crate) async fn run<B: Backend>(
    serving: impl Future<Output = std::io::Result<()>>,
    etiquette: &Etiquette<B>,
    stopping: Stopping,
) -> Result<(), Failed> {
    let mut serving = std::pin::pin!(serving);
    let stopped_early = tokio::select! {
        served = &mut serving => Some(served),
        () = stopping.wait() => None,
    };
    if let Some(Err(error)) = stopped_early {
        return Err(error.into()); // it could not listen
    }
    let deadline = drain_deadline();
    let release = etiquette.release_timeout(deadline);
    etiquette.close_event_streams();
    let server = async {
        if let Some(served) = stopped_early {
            return served;
        }
        match tokio::time::timeout(deadline, &mut serving).await {
            Ok(served) => served,
            Err(_) => {
                tracing::warn!(
                    ?deadline,
                    "connections still open at the deadline are closed"
                );
                Ok(())
            }
        }
    };
    let (served, report) = tokio::join!(server, release);
    tracing::info!("released: {report}");
    Ok(served?)
}

/// What `GET /tasks/{id}` answers, the same in every framework: the
/// status as JSON, or a status code with a plain-text reason.
pub(crate) enum StatusAnswer {
    Found(etiquette_core::TaskStatus),
    Refused(u16, String),
}

/// The answer to `GET /tasks/{id}`, `id` as the path gave it: 400 for
/// what is not an id, 404 for an id the queue does not know (any more),
/// 503 when the queue's store does not answer.
pub(crate) async fn task_status<B: Backend>(
    decorum: &etiquette_core::Decorum<B>,
    id: &str,
) -> StatusAnswer {
    let Ok(number) = id.parse::<u64>() else {
        return StatusAnswer::Refused(400, format!("not a task id: {id}"));
    };
    match decorum.status(etiquette_core::TaskId::from(number)).await {
        Ok(Some(status)) => StatusAnswer::Found(status),
        Ok(None) => StatusAnswer::Refused(404, format!("no task {number}")),
        Err(error) => StatusAnswer::Refused(503, format!("the queue did not answer: {error}")),
    }
}

/// The body of every example's answer to a request no route matches:
/// `404 Not Found`, `text/plain`, the request's path (without its query)
/// after `not found: `. A method a route does not take is answered an
/// empty `405 Method Not Allowed`, in every framework alike.
pub(crate) fn not_found(path: &str) -> String {
    format!("not found: {path}")
}

/// The queue's gauges and counters in this process, as the examples'
/// `GET /stats` answers them.
pub(crate) fn stats_json(stats: etiquette_core::Stats) -> serde_json::Value {
    serde_json::json!({
        "queued": stats.queued,
        "running": stats.running,
        "adds_waiting": stats.adds_waiting,
        "accepted": stats.accepted,
        "completed": stats.completed,
        "failed": stats.failed,
        "cancelled": stats.cancelled,
    })
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

/// The sleeper examples' job: three seconds of sleep (`SLEEP_MS` sets
/// another length), then a log line.
#[derive(Serialize, Deserialize)]
pub(crate) struct SleepThreeSeconds;

impl Job for SleepThreeSeconds {
    const NAME: &'static str = "sleep_three_seconds";
    type Error = Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Infallible> {
        tokio::time::sleep(settings().sleep).await;
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
    settings().step
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
    use ::axum::extract::Path;
    use ::axum::http::{StatusCode, Uri};
    use ::axum::response::{IntoResponse, Response};
    use ::axum::routing::{MethodRouter, get};
    use ::axum::{Json, Router};
    use etiquette_axum::core::backend::Backend;
    use etiquette_axum::{Decorum, TaskRejected};

    /// `/add-task`'s methods: `POST`, and `GET` as the original's examples
    /// take it (FastAPI's `@app.get`); not `HEAD`, which axum would
    /// otherwise send to the `GET` handler, so that a link checker or a
    /// prefetcher starts no task.
    pub(crate) fn add_task<H, T, S>(handler: H) -> MethodRouter<S>
    where
        H: ::axum::handler::Handler<T, S>,
        T: 'static,
        S: Clone + Send + Sync + 'static,
    {
        get(handler.clone())
            .post(handler)
            .head(|| async { (StatusCode::METHOD_NOT_ALLOWED, [("allow", "GET, POST")]) })
    }

    /// What `/add-task` answers once the task is added: `OK`, its id in
    /// `x-task-id`.
    pub(crate) fn added(id: impl std::fmt::Display) -> Result<Response, TaskRejected> {
        Ok(([("x-task-id", id.to_string())], "OK").into_response())
    }

    /// Serves `app` on [`address`](super::address) until `stopping`, then
    /// waits for the open connections: for ever, as axum sets them no
    /// deadline, unless [`run`](super::run) bounds it. A path no route
    /// matches is answered [`not_found`](super::not_found).
    pub(crate) async fn serve(app: Router, stopping: super::Stopping) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(super::address());
        let listener = listener.await.map_err(super::bind_error)?;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        ::axum::serve(listener, app.fallback(not_found))
            .with_graceful_shutdown(stopping.wait())
            .await
    }

    /// What a path no route matches is answered (axum's own answer has no
    /// body).
    async fn not_found(uri: Uri) -> (StatusCode, String) {
        (StatusCode::NOT_FOUND, super::not_found(uri.path()))
    }

    /// The queue's gauges and counters in this process (`GET /stats`).
    pub(crate) async fn stats<B: Backend>(decorum: Decorum<B>) -> Json<serde_json::Value> {
        Json(super::stats_json(decorum.stats()))
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        Path(id): Path<String>,
    ) -> Response {
        match super::task_status(&decorum, &id).await {
            super::StatusAnswer::Found(status) => Json(status).into_response(),
            super::StatusAnswer::Refused(code, reason) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (code, reason).into_response()
            }
        }
    }
}

/// Serving with actix-web, and the status route its examples share.
pub(crate) mod actix {
    use actix_web::http::StatusCode;
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, Resource, web};
    use etiquette_actix::Decorum;
    use etiquette_actix::core::backend::Backend;

    /// `/add-task`: `POST`, and `GET` as the original's examples take it
    /// (FastAPI's `@app.get`); any other method is answered 405, not 404.
    pub(crate) fn add_task<F, Args>(handler: F) -> Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource("/add-task")
            .route(web::get().to(handler.clone()))
            .route(web::post().to(handler))
            .default_service(web::to(|| async {
                HttpResponse::MethodNotAllowed()
                    .insert_header(("allow", "GET, POST"))
                    .finish()
            }))
    }

    /// The route `path`, taking `GET` (and `HEAD`, as axum and poem do)
    /// to `handler`; any other method is answered 405, as in the other
    /// frameworks (`App::route` would answer it 404: its method is part of
    /// what the path must match).
    pub(crate) fn get<F, Args>(path: &str, handler: F) -> Resource
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        web::resource(path)
            .route(web::get().to(handler.clone()))
            .route(web::head().to(handler))
    }

    /// What `/add-task` answers once the task is added: `OK`, its id in
    /// `x-task-id`.
    pub(crate) fn added(id: impl std::fmt::Display) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("x-task-id", id.to_string()))
            .body("OK")
    }

    /// Serves the app that `routes` configures on
    /// [`address`](super::address) until `stopping`, then gives the open
    /// connections until the deadline. `routes` runs once per worker, each
    /// of which builds an app of its own. A path no route matches is
    /// answered [`not_found`](super::not_found).
    pub(crate) async fn serve(
        routes: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
        stopping: super::Stopping,
    ) -> std::io::Result<()> {
        let app = move || {
            App::new()
                .configure(routes.clone())
                .default_service(web::to(not_found))
        };
        let server = HttpServer::new(app)
            .shutdown_signal(stopping.wait())
            .shutdown_timeout(super::drain_deadline().as_secs())
            .bind(super::address())
            .map_err(super::bind_error)?;
        tracing::info!("listening on http://{}", server.addrs()[0]);
        server.run().await
    }

    /// What a path no route matches is answered (actix-web's own answer
    /// has no body).
    async fn not_found(request: HttpRequest) -> HttpResponse {
        HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body(super::not_found(request.path()))
    }

    /// The queue's gauges and counters in this process (`GET /stats`).
    pub(crate) async fn stats<B: Backend>(decorum: Decorum<B>) -> HttpResponse {
        HttpResponse::Ok().json(super::stats_json(decorum.stats()))
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        id: web::Path<String>,
    ) -> HttpResponse {
        match super::task_status(&decorum, &id).await {
            super::StatusAnswer::Found(status) => HttpResponse::Ok().json(status),
            super::StatusAnswer::Refused(code, reason) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                HttpResponse::build(code)
                    .content_type("text/plain; charset=utf-8")
                    .body(reason)
            }
        }
    }
}

/// Serving with poem, and the status route its examples share.
pub(crate) mod poem {

    use std::sync::Arc;

    use ::poem::error::{MethodNotAllowedError, NotFoundError};
    use ::poem::http::StatusCode;
    use ::poem::listener::{Acceptor as _, Listener as _, TcpListener};
    use ::poem::web::{Json, Path};
    use ::poem::{
        Endpoint, EndpointExt as _, IntoEndpoint, IntoResponse, Request, Response, RouteMethod,
        Server, handler,
    };
    use etiquette_poem::Decorum;
    use etiquette_poem::core::backend::Backend;

    /// `/add-task`'s methods: `POST`, and `GET` as the original's examples
    /// take it (FastAPI's `@app.get`); not `HEAD`, which poem would
    /// otherwise send to the `GET` handler, so that a link checker or a
    /// prefetcher starts no task.
    pub(crate) fn add_task<E: Endpoint + 'static>(handler: impl Fn() -> E) -> RouteMethod {
        RouteMethod::new()
            .get(handler())
            .post(handler())
            // The same empty 405 as the other frameworks, not poem's own
            // "method not allowed" body.
            .head(method_not_allowed)
            .put(method_not_allowed)
            .patch(method_not_allowed)
            .delete(method_not_allowed)
    }

    #[handler]
    fn method_not_allowed() -> Response {
        StatusCode::METHOD_NOT_ALLOWED
            .with_header("allow", "GET, POST")
            .into_response()
    }

    /// What `/add-task` answers once the task is added: `OK`, its id in
    /// `x-task-id`.
    pub(crate) fn added(id: impl std::fmt::Display) -> Response {
        "OK".with_header("x-task-id", id.to_string())
            .into_response()
    }

    /// Serves `app` on [`address`](super::address) until `stopping`, then
    /// gives the open connections until the deadline. A path no route
    /// matches is answered [`not_found`](super::not_found), a method a
    /// route does not take an empty 405.
    pub(crate) async fn serve(
        app: impl IntoEndpoint<Endpoint: 'static>,
        stopping: super::Stopping,
    ) -> std::io::Result<()> {
        // Bound before logging, so the log never announces a port not yet open.
        let acceptor = TcpListener::bind(super::address()).into_acceptor();
        let acceptor = acceptor.await.map_err(super::bind_error)?;
        let local = acceptor.local_addr();
        if let Some(address) = local.first().and_then(|address| address.as_socket_addr()) {
            tracing::info!("listening on http://{address}");
        }
        let app = app.into_endpoint().around(unmatched);
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, stopping.wait(), Some(super::drain_deadline()))
            .await
    }

    /// Answers as the other frameworks do what no route of `app` takes:
    /// poem's own answers say "not found" or "method not allowed" without
    /// the path, and the latter in a body.
    async fn unmatched<E: Endpoint>(app: Arc<E>, request: Request) -> ::poem::Result<Response> {
        let path = request.uri().path().to_owned();
        match app.call(request).await {
            Ok(answer) => Ok(answer.into_response()),
            Err(error) if error.is::<NotFoundError>() => Ok(super::not_found(&path)
                .with_content_type("text/plain; charset=utf-8")
                .with_status(StatusCode::NOT_FOUND)
                .into_response()),
            Err(error) if error.is::<MethodNotAllowedError>() => {
                Ok(StatusCode::METHOD_NOT_ALLOWED.into_response())
            }
            Err(error) => Err(error),
        }
    }

    /// The queue's gauges and counters in this process (`GET /stats`).
    #[handler]
    pub(crate) fn stats<B: Backend>(decorum: Decorum<B>) -> Json<serde_json::Value> {
        Json(super::stats_json(decorum.stats()))
    }

    /// The task's status as JSON, e.g. `{"status":"succeeded","attempts":1}`;
    /// 404 for an id the queue does not know (any more).
    #[handler]
    pub(crate) async fn task_status<B: Backend>(
        decorum: Decorum<B>,
        Path(id): Path<String>,
    ) -> Response {
        match super::task_status(&decorum, &id).await {
            super::StatusAnswer::Found(status) => Json(status).into_response(),
            super::StatusAnswer::Refused(code, reason) => {
                let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                reason
                    .with_content_type("text/plain; charset=utf-8")
                    .with_status(code)
                    .into_response()
            }
        }
    }
}
