//! The suite under poem, in-process through `Endpoint::get_response`, plus
//! one run over a real socket.

use etiquette_poem::core::backend::Backend;
use etiquette_poem::sse::{self, LastEventId};
use etiquette_poem::{
    Dashboard, Decorum, Etiquette, Memory, TaskHandle, TaskId, TaskRejected, TaskStatus,
};
use etiquette_tests::{JobQuery, Probe, reporting};
use poem::http::uri::Scheme;
use poem::listener::{Acceptor as _, Listener as _, TcpListener};
use poem::test::TestClient;
use poem::web::{Data, Json, LocalAddr, Path, Query, RemoteAddr};
use poem::{Endpoint, EndpointExt, IntoResponse, RequestParts, Route, Server, get, handler};

use crate::socket::{self, RunningServer};
use crate::suite::{self, Client, Framework, Reply, within};

type Answer = Result<&'static str, TaskRejected>;

/// An answer naming the accepted task, so that a test can follow it.
type AnswerWithId = Result<poem::Response, TaskRejected>;

/// `body`, with the task's id in `x-task-id`.
fn with_task_id<B: Backend>(task: TaskHandle<B>, body: &'static str) -> AnswerWithId {
    Ok(body
        .with_header("x-task-id", task.id().to_string())
        .into_response())
}

#[handler]
async fn safe(decorum: Decorum, probe: Data<&Probe>) -> AnswerWithId {
    with_task_id(decorum.add_task(probe.add(1)).await?, "OK")
}

#[handler]
async fn progress(decorum: Decorum) -> AnswerWithId {
    with_task_id(decorum.task_with_context(reporting).add().await?, "OK")
}

#[handler]
async fn task_events<B: Backend>(
    decorum: Decorum<B>,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> poem::Result<poem::Response> {
    Ok(sse::task_events(&decorum, id, last).await?)
}

#[handler]
fn all_events<B: Backend>(decorum: Decorum<B>, last: LastEventId) -> poem::Response {
    sse::all_events(&decorum, last)
}

#[handler]
async fn task_status<B: Backend>(
    decorum: Decorum<B>,
    Path(id): Path<TaskId>,
) -> poem::Result<Json<TaskStatus>> {
    let status = decorum.status(id).await.map_err(|_unreachable| {
        poem::Error::from_status(poem::http::StatusCode::SERVICE_UNAVAILABLE)
    })?;
    Ok(Json(status.ok_or_else(|| {
        poem::Error::from_status(poem::http::StatusCode::NOT_FOUND)
    })?))
}

#[handler]
async fn racy(decorum: Decorum, probe: Data<&Probe>) -> Answer {
    decorum.add_task(probe.racy_increment()).await?;
    Ok("OK")
}

#[handler]
async fn splat_path(decorum: Decorum, probe: Data<&Probe>, Path(n): Path<u64>) -> Answer {
    decorum.add_task(probe.add(n)).await?;
    Ok("OK")
}

#[derive(serde::Deserialize)]
struct N {
    n: u64,
}

#[handler]
async fn splat_query(decorum: Decorum, probe: Data<&Probe>, Query(q): Query<N>) -> Answer {
    decorum.add_task(probe.add(q.n)).await?;
    Ok("OK")
}

#[handler]
async fn fail(decorum: Decorum, probe: Data<&Probe>) -> Answer {
    decorum.add_task(probe.fail()).await?;
    Ok("OK")
}

#[handler]
async fn panic(decorum: Decorum, probe: Data<&Probe>) -> Answer {
    decorum.add_task(probe.panic()).await?;
    Ok("OK")
}

/// Through `Data<&Etiquette>` rather than the `Decorum` extractor: both work.
#[handler]
async fn try_block(etiquette: Data<&Etiquette>, probe: Data<&Probe>) -> AnswerWithId {
    with_task_id(etiquette.decorum().try_add_task(probe.block())?, "OK")
}

#[handler]
async fn job<B: Backend>(
    decorum: Decorum<B>,
    probe: Data<&Probe>,
    Query(query): Query<JobQuery>,
) -> AnswerWithId {
    let (task, body) = etiquette_tests::add_job(&decorum, &probe, query).await?;
    with_task_id(task, body)
}

/// The routes that work on any backend, added to `route`.
fn job_routes<B: Backend>(route: Route) -> Route {
    route
        .at("/job", get(job::<B>::default()))
        .at("/status/:id", get(task_status::<B>::default()))
        .at("/events/:id", get(task_events::<B>::default()))
        .at("/events", get(all_events::<B>::default()))
}

fn route(etiquette: Etiquette, probe: Probe) -> impl Endpoint {
    job_routes::<Memory>(Route::new())
        .at("/safe", get(safe))
        .at("/racy", get(racy))
        .at("/splat/:n", get(splat_path))
        .at("/splat", get(splat_query))
        .at("/fail", get(fail))
        .at("/panic", get(panic))
        .at("/try-block", get(try_block))
        .at("/progress", get(progress))
        .data(etiquette)
        .data(probe)
}

pub(crate) struct Poem;

impl Framework for Poem {
    async fn app(etiquette: Etiquette, probe: Probe) -> impl Client {
        PoemClient(route(etiquette, probe))
    }

    async fn job_app<B: Backend>(etiquette: Etiquette<B>, probe: Probe) -> impl Client {
        PoemClient(job_routes::<B>(Route::new()).data(etiquette).data(probe))
    }

    async fn dashboard_app<B: Backend>(dashboard: Dashboard<B>) -> impl Client {
        PoemClient(Route::new().nest("/etiquette", etiquette_poem::dashboard(dashboard)))
    }
}

/// Calls the endpoint in-process with requests made as poem's server makes
/// them, whose original URI is the one sent (`TestClient`'s is always `/`).
struct PoemClient<E>(E);

impl<E: Endpoint> Client for PoemClient<E> {
    async fn send(
        &self,
        method: &'static str,
        uri: &str,
        headers: &[(&'static str, &[u8])],
    ) -> Reply {
        let mut request = poem::http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let (parts, ()) = request.body(()).unwrap().into_parts();
        let parts = RequestParts::from((
            parts,
            LocalAddr::default(),
            RemoteAddr::default(),
            Scheme::HTTP,
        ));
        let request = poem::Request::from_parts(parts, poem::Body::empty());
        let (head, body) = self.0.get_response(request).await.into_parts();
        let body = body.into_bytes().await.unwrap();
        let header = |name: &str| head.headers.get(name).map(|v| v.to_str().unwrap());
        Reply::read(head.status.as_u16(), header, &body)
    }
}

crate::stamp!(super::Poem, #[tokio::test]);

#[tokio::test]
async fn a_missing_queue_is_a_500_that_says_what_to_add() {
    #[handler]
    fn needs_queue(decorum: Decorum) -> String {
        format!("{:?}", decorum.stats())
    }
    let client = TestClient::new(Route::new().at("/", get(needs_queue)));
    let response = within("the response to GET /", client.get("/").send()).await;
    response.assert_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR);
    within(
        "the body of GET /",
        response.assert_text(
            "etiquette: no queue attached; add `.data(etiquette.clone())` to your endpoint",
        ),
    )
    .await;
}

#[tokio::test]
async fn serves_over_a_real_socket_then_drains() {
    let etiquette = Etiquette::initiate(4).unwrap();
    let (probe, _signals) = Probe::new();
    let acceptor = socket::bind(TcpListener::bind(socket::LOOPBACK).into_acceptor()).await;
    let address = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
    let base = format!("http://{address}");
    let (stop, stopped) = socket::shutdown_signal();
    let app = route(etiquette.clone(), probe.clone());
    let timeout = Some(std::time::Duration::from_secs(5));
    let serving =
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, stopped, timeout);
    let server = RunningServer::spawn("the poem server", base, stop, serving);
    socket::splat_then_drain(server, &etiquette, &probe, suite::splat_query).await;
}

#[tokio::test]
async fn the_dashboard_page_is_served_with_a_trailing_slash_too() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let client = <Poem as Framework>::dashboard_app(Dashboard::new(&etiquette)).await;
    let page = suite::get_after(&client, "/etiquette/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<script src="./dashboard.js" defer></script>"#)
    );
}

/// The dashboards, each nested at its path, served on 127.0.0.1:`port`.
fn serve_dashboards(port: u16, dashboards: Vec<(&'static str, Dashboard)>) -> RunningServer {
    let app = dashboards
        .into_iter()
        .fold(Route::new(), |app, (path, dashboard)| {
            app.nest(path, etiquette_poem::dashboard(dashboard))
        });
    let (stop, stopped) = socket::shutdown_signal();
    let acceptor = poem::listener::TcpAcceptor::from_tokio(socket::listener(port)).unwrap();
    let timeout = Some(std::time::Duration::from_secs(5));
    let serving =
        Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(app, stopped, timeout);
    let base = format!("http://127.0.0.1:{port}");
    RunningServer::spawn("the poem server", base, stop, serving)
}

#[tokio::test]
async fn the_dashboard_in_chromium() {
    crate::browser::walk_through("poem", serve_dashboards).await;
}
