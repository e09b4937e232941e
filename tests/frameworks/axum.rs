//! The suite under axum, in-process through `tower::ServiceExt::oneshot`,
//! plus one run over a real socket.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path, Query, State};
use axum::http::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use etiquette_axum::core::backend::Backend;
use etiquette_axum::sse::{self, LastEventId};
use etiquette_axum::{
    Dashboard, Decorum, Etiquette, Memory, TaskHandle, TaskId, TaskRejected, TaskStatus,
};
use etiquette_tests::{JobQuery, Probe, reporting};
use tower::ServiceExt as _;

use crate::socket::{self, RunningServer};
use crate::suite::{self, Client, Framework, Reply};

struct AppState<B: Backend = Memory> {
    etiquette: Etiquette<B>,
    probe: Probe,
}

impl<B: Backend> Clone for AppState<B> {
    fn clone(&self) -> Self {
        Self {
            etiquette: self.etiquette.clone(),
            probe: self.probe.clone(),
        }
    }
}

impl<B: Backend> FromRef<AppState<B>> for Etiquette<B> {
    fn from_ref(state: &AppState<B>) -> Self {
        state.etiquette.clone()
    }
}

impl<B: Backend> FromRef<AppState<B>> for Probe {
    fn from_ref(state: &AppState<B>) -> Self {
        state.probe.clone()
    }
}

type Answer = Result<&'static str, TaskRejected>;

/// An answer naming the accepted task, so that a test can follow it.
type AnswerWithId = Result<([(&'static str, String); 1], &'static str), TaskRejected>;

/// `body`, with the task's id in `x-task-id`.
fn with_task_id<B: Backend>(task: TaskHandle<B>, body: &'static str) -> AnswerWithId {
    Ok(([("x-task-id", task.id().to_string())], body))
}

async fn safe(decorum: Decorum, State(probe): State<Probe>) -> AnswerWithId {
    with_task_id(decorum.add_task(probe.add(1)).await?, "OK")
}

async fn progress(decorum: Decorum) -> AnswerWithId {
    with_task_id(decorum.task_with_context(reporting).add().await?, "OK")
}

async fn task_events<B: Backend>(
    decorum: Decorum<B>,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> impl IntoResponse {
    sse::task_events(&decorum, id, last).await
}

async fn all_events<B: Backend>(decorum: Decorum<B>, last: LastEventId) -> impl IntoResponse {
    sse::all_events(&decorum, last)
}

async fn status<B: Backend>(
    decorum: Decorum<B>,
    Path(id): Path<TaskId>,
) -> Result<Json<TaskStatus>, StatusCode> {
    let status = decorum.status(id).await;
    let status = status.map_err(|_unreachable| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(Json(status.ok_or(StatusCode::NOT_FOUND)?))
}

async fn racy(decorum: Decorum, State(probe): State<Probe>) -> Answer {
    decorum.add_task(probe.racy_increment()).await?;
    Ok("OK")
}

async fn splat_path(decorum: Decorum, State(probe): State<Probe>, Path(n): Path<u64>) -> Answer {
    decorum.add_task(probe.add(n)).await?;
    Ok("OK")
}

#[derive(serde::Deserialize)]
struct N {
    n: u64,
}

async fn splat_query(decorum: Decorum, State(probe): State<Probe>, Query(q): Query<N>) -> Answer {
    decorum.add_task(probe.add(q.n)).await?;
    Ok("OK")
}

async fn fail(decorum: Decorum, State(probe): State<Probe>) -> Answer {
    decorum.add_task(probe.fail()).await?;
    Ok("OK")
}

async fn panic(decorum: Decorum, State(probe): State<Probe>) -> Answer {
    decorum.add_task(probe.panic()).await?;
    Ok("OK")
}

async fn try_block(decorum: Decorum, State(probe): State<Probe>) -> AnswerWithId {
    with_task_id(decorum.try_add_task(probe.block())?, "OK")
}

async fn job<B: Backend>(
    decorum: Decorum<B>,
    State(probe): State<Probe>,
    Query(query): Query<JobQuery>,
) -> AnswerWithId {
    let (task, body) = etiquette_tests::add_job(&decorum, &probe, query).await?;
    with_task_id(task, body)
}

/// The routes that work on any backend.
fn job_routes<B: Backend>() -> Router<AppState<B>> {
    Router::new()
        .route("/job", get(job::<B>))
        .route("/status/{id}", get(status::<B>))
        .route("/events/{id}", get(task_events::<B>))
        .route("/events", get(all_events::<B>))
}

fn router(etiquette: Etiquette, probe: Probe) -> Router {
    job_routes::<Memory>()
        .route("/safe", get(safe))
        .route("/racy", get(racy))
        .route("/splat/{n}", get(splat_path))
        .route("/splat", get(splat_query))
        .route("/fail", get(fail))
        .route("/panic", get(panic))
        .route("/try-block", get(try_block))
        .route("/progress", get(progress))
        .with_state(AppState { etiquette, probe })
}

pub(crate) struct Axum;

impl Framework for Axum {
    async fn app(etiquette: Etiquette, probe: Probe) -> impl Client {
        AxumClient(router(etiquette, probe))
    }

    async fn job_app<B: Backend>(etiquette: Etiquette<B>, probe: Probe) -> impl Client {
        AxumClient(job_routes::<B>().with_state(AppState { etiquette, probe }))
    }

    async fn dashboard_app<B: Backend>(dashboard: Dashboard<B>) -> impl Client {
        AxumClient(Router::new().nest("/etiquette", etiquette_axum::dashboard(dashboard)))
    }
}

struct AxumClient(Router);

impl Client for AxumClient {
    async fn send(
        &self,
        method: &'static str,
        uri: &str,
        headers: &[(&'static str, &[u8])],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let (head, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let header = |name: &str| head.headers.get(name).map(|v| v.to_str().unwrap());
        Reply::read(head.status.as_u16(), header, &body)
    }
}

crate::stamp!(super::Axum, #[tokio::test]);

#[tokio::test]
async fn serves_over_a_real_socket_then_drains() {
    let etiquette = Etiquette::initiate(4).unwrap();
    let (probe, _signals) = Probe::new();
    let listener = socket::bind(tokio::net::TcpListener::bind(socket::LOOPBACK)).await;
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = socket::shutdown_signal();
    let app = router(etiquette.clone(), probe.clone());
    let serving = axum::serve(listener, app).with_graceful_shutdown(stopped);
    let serving = serving.into_future();
    let server = RunningServer::spawn("the axum server", base, stop, serving);
    socket::splat_then_drain(server, &etiquette, &probe, suite::splat_path).await;
}

/// axum routes `/etiquette/` to no router nested at `/etiquette` (the page
/// is at `/etiquette` there); nested as a service, the dashboard serves
/// both.
#[tokio::test]
async fn the_dashboard_nested_as_a_service_serves_both_paths() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let app = Router::new().nest_service(
        "/etiquette",
        etiquette_axum::dashboard(Dashboard::new(&etiquette)),
    );
    let client = AxumClient(app);
    let page = suite::get_after(&client, "/etiquette/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<script src="./dashboard.js" defer></script>"#)
    );
    let page = suite::get_after(&client, "/etiquette", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<script src="./etiquette/dashboard.js" defer></script>"#)
    );
}

/// The dashboards, each nested at its path, served on 127.0.0.1:`port`.
fn serve_dashboards<B: Backend>(
    port: u16,
    dashboards: Vec<(&'static str, Dashboard<B>)>,
) -> RunningServer {
    let app = dashboards
        .into_iter()
        .fold(Router::new(), |app, (path, dashboard)| {
            app.nest(path, etiquette_axum::dashboard(dashboard))
        });
    let (stop, stopped) = socket::shutdown_signal();
    let serving = axum::serve(socket::listener(port), app).with_graceful_shutdown(stopped);
    let base = format!("http://127.0.0.1:{port}");
    RunningServer::spawn("the axum server", base, stop, serving.into_future())
}

#[tokio::test]
async fn the_dashboard_in_chromium() {
    crate::browser::walk_through("axum", serve_dashboards).await;
}

#[tokio::test]
async fn the_dashboard_on_postgres_in_chromium() {
    crate::browser::stored_jobs_in_chromium(serve_dashboards).await;
}
