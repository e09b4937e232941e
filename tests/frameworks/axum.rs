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
use etiquette_axum::sse::{self, LastEventId};
use etiquette_axum::{Decorum, Etiquette, TaskId, TaskRejected, TaskStatus};
use etiquette_tests::{JobQuery, Probe};
use tower::ServiceExt as _;

use crate::suite::{Client, Framework, Reply, within};

#[derive(Clone, FromRef)]
struct AppState {
    etiquette: Etiquette,
    probe: Probe,
}

type Answer = Result<&'static str, TaskRejected>;

async fn safe(
    decorum: Decorum,
    State(probe): State<Probe>,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum.add_task(probe.add(1)).await?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

async fn progress(
    decorum: Decorum,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum
        .task_with_context(etiquette_tests::reporting)
        .add()
        .await?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

async fn task_events(
    decorum: Decorum,
    Path(id): Path<TaskId>,
    last: LastEventId,
) -> impl IntoResponse {
    sse::task_events(&decorum, id, last)
}

async fn all_events(decorum: Decorum, last: LastEventId) -> impl IntoResponse {
    sse::all_events(&decorum, last)
}

async fn status(decorum: Decorum, Path(id): Path<TaskId>) -> Result<Json<TaskStatus>, StatusCode> {
    let task = decorum.handle(id).ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(task.status()))
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

async fn try_block(
    decorum: Decorum,
    State(probe): State<Probe>,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let task = decorum.try_add_task(probe.block())?;
    Ok(([("x-task-id", task.id().to_string())], "OK"))
}

async fn job(
    decorum: Decorum,
    State(probe): State<Probe>,
    Query(query): Query<JobQuery>,
) -> Result<([(&'static str, String); 1], &'static str), TaskRejected> {
    let (task, body) = etiquette_tests::add_job(&decorum, &probe, query).await?;
    Ok(([("x-task-id", task.id().to_string())], body))
}

fn router(etiquette: Etiquette, probe: Probe) -> Router {
    Router::new()
        .route("/safe", get(safe))
        .route("/racy", get(racy))
        .route("/splat/{n}", get(splat_path))
        .route("/splat", get(splat_query))
        .route("/fail", get(fail))
        .route("/panic", get(panic))
        .route("/try-block", get(try_block))
        .route("/job", get(job))
        .route("/status/{id}", get(status))
        .route("/progress", get(progress))
        .route("/events/{id}", get(task_events))
        .route("/events", get(all_events))
        .with_state(AppState { etiquette, probe })
}

pub(crate) struct Axum;

impl Framework for Axum {
    async fn app(etiquette: Etiquette, probe: Probe) -> impl Client {
        AxumClient(router(etiquette, probe))
    }
}

struct AxumClient(Router);

impl Client for AxumClient {
    async fn get_with(&self, uri: &str, headers: &[(&'static str, &[u8])]) -> Reply {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::empty()).unwrap();
        let response = self.0.clone().oneshot(request).await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
        };
        let (retry_after, task_id) = (header("retry-after"), header("x-task-id"));
        let content_type = header("content-type");
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            retry_after,
            task_id,
            content_type,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

crate::stamp!(super::Axum, #[tokio::test]);

#[tokio::test]
async fn serves_over_a_real_socket_then_drains() {
    let etiquette = Etiquette::initiate(4).unwrap();
    let (probe, _signals) = Probe::new();
    let listener = within(
        "binding a listener on 127.0.0.1:0",
        tokio::net::TcpListener::bind("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router(etiquette.clone(), probe.clone()))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );

    let http = reqwest::Client::new();
    for n in 0..20 {
        let uri = format!("{base}/splat/{n}");
        let reply = within(format!("the response to GET {uri}"), http.get(&uri).send())
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        let body = within(format!("the body of GET {uri}"), reply.text()).await;
        assert_eq!(body.unwrap(), "OK");
    }
    stop.send(()).unwrap();
    within("the axum server to shut down gracefully", server)
        .await
        .unwrap()
        .unwrap();

    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(report.completed, 20);
    assert_eq!(probe.safe(), 190);
}
