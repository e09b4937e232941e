//! The suite under actix-web, in-process through `actix_web::test`, plus a
//! real multi-worker server stopped while tasks are in flight.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, HttpServer, test, web};
use etiquette_actix::core::backend::Backend;
use etiquette_actix::sse::{self, LastEventId, UnknownTask};
use etiquette_actix::{
    Builder, Dashboard, Decorum, Etiquette, Memory, TaskHandle, TaskId, TaskRejected,
};
use etiquette_tests::{JobQuery, Probe, reporting};

use crate::socket;
use crate::suite::{self, Client, Framework, Reply, within};

type Answer = Result<&'static str, TaskRejected>;

/// An answer naming the accepted task, so that a test can follow it.
type AnswerWithId = Result<HttpResponse, TaskRejected>;

/// `body`, with the task's id in `x-task-id`.
fn with_task_id<B: Backend>(task: TaskHandle<B>, body: &'static str) -> AnswerWithId {
    Ok(HttpResponse::Ok()
        .insert_header(("x-task-id", task.id().to_string()))
        .body(body))
}

async fn safe(decorum: Decorum, probe: web::ThinData<Probe>) -> AnswerWithId {
    with_task_id(decorum.add_task(probe.add(1)).await?, "OK")
}

async fn progress(decorum: Decorum) -> AnswerWithId {
    with_task_id(decorum.task_with_context(reporting).add().await?, "OK")
}

async fn task_events<B: Backend>(
    decorum: Decorum<B>,
    id: web::Path<TaskId>,
    last: LastEventId,
) -> Result<impl actix_web::Responder, UnknownTask> {
    sse::task_events(&decorum, *id, last).await
}

async fn all_events<B: Backend>(
    decorum: Decorum<B>,
    last: LastEventId,
) -> impl actix_web::Responder {
    sse::all_events(&decorum, last)
}

async fn status<B: Backend>(decorum: Decorum<B>, id: web::Path<TaskId>) -> HttpResponse {
    match decorum.status(*id).await {
        Ok(Some(status)) => HttpResponse::Ok().json(status),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_unreachable) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn racy(decorum: Decorum, probe: web::ThinData<Probe>) -> Answer {
    decorum.add_task(probe.racy_increment()).await?;
    Ok("OK")
}

async fn splat_path(decorum: Decorum, probe: web::ThinData<Probe>, n: web::Path<u64>) -> Answer {
    decorum.add_task(probe.add(*n)).await?;
    Ok("OK")
}

#[derive(serde::Deserialize)]
struct N {
    n: u64,
}

async fn splat_query(decorum: Decorum, probe: web::ThinData<Probe>, q: web::Query<N>) -> Answer {
    decorum.add_task(probe.add(q.n)).await?;
    Ok("OK")
}

async fn fail(decorum: Decorum, probe: web::ThinData<Probe>) -> Answer {
    decorum.add_task(probe.fail()).await?;
    Ok("OK")
}

async fn panic(decorum: Decorum, probe: web::ThinData<Probe>) -> Answer {
    decorum.add_task(probe.panic()).await?;
    Ok("OK")
}

async fn try_block(decorum: Decorum, probe: web::ThinData<Probe>) -> AnswerWithId {
    with_task_id(decorum.try_add_task(probe.block())?, "OK")
}

async fn job<B: Backend>(
    decorum: Decorum<B>,
    probe: web::ThinData<Probe>,
    query: web::Query<JobQuery>,
) -> AnswerWithId {
    let (task, body) = etiquette_tests::add_job(&decorum, &probe, query.into_inner()).await?;
    with_task_id(task, body)
}

fn app(
    etiquette: Etiquette,
    probe: Probe,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::ThinData(etiquette))
        .app_data(web::ThinData(probe))
        .route("/safe", web::get().to(safe))
        .route("/racy", web::get().to(racy))
        .route("/splat/{n}", web::get().to(splat_path))
        .route("/splat", web::get().to(splat_query))
        .route("/fail", web::get().to(fail))
        .route("/panic", web::get().to(panic))
        .route("/try-block", web::get().to(try_block))
        .route("/progress", web::get().to(progress))
        .configure(job_routes::<Memory>)
}

/// The routes that work on any backend.
fn job_routes<B: Backend>(config: &mut web::ServiceConfig) {
    config
        .route("/job", web::get().to(job::<B>))
        .route("/status/{id}", web::get().to(status::<B>))
        .route("/events/{id}", web::get().to(task_events::<B>))
        .route("/events", web::get().to(all_events::<B>));
}

pub(crate) struct Actix;

impl Framework for Actix {
    async fn app(etiquette: Etiquette, probe: Probe) -> impl Client {
        start(test::init_service(app(etiquette, probe))).await
    }

    async fn job_app<B: Backend>(etiquette: Etiquette<B>, probe: Probe) -> impl Client {
        let app = App::new()
            .app_data(web::ThinData(etiquette))
            .app_data(web::ThinData(probe))
            .configure(job_routes::<B>);
        start(test::init_service(app)).await
    }

    async fn dashboard_app<B: Backend>(dashboard: Dashboard<B>) -> impl Client {
        let app = App::new().service(etiquette_actix::dashboard("/etiquette", dashboard));
        start(test::init_service(app)).await
    }
}

/// Awaits `service`, an app being started by `actix_web::test`, as a
/// client sending it requests in-process.
async fn start<S>(service: impl Future<Output = S>) -> ActixClient<S> {
    ActixClient(within("the actix test service to start", service).await)
}

struct ActixClient<S>(S);

impl<S, B> Client for ActixClient<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    async fn send(
        &self,
        method: &'static str,
        uri: &str,
        headers: &[(&'static str, &[u8])],
    ) -> Reply {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = test::TestRequest::default().method(method).uri(uri);
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let response = test::call_service(&self.0, request.to_request()).await;
        // Reading the body takes the response, so its head is kept apart.
        let (status, headers) = (response.status(), response.headers().clone());
        let body = test::read_body(response).await;
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap());
        Reply::read(status.as_u16(), header, &body)
    }
}

crate::stamp!(super::Actix, #[actix_web::test]);

#[actix_web::test]
async fn a_missing_registration_is_a_500_that_says_what_to_add() {
    async fn handler(decorum: Decorum) -> HttpResponse {
        let _ = decorum.stats();
        HttpResponse::Ok().finish()
    }
    let app = App::new().route("/", web::get().to(handler));
    let client = start(test::init_service(app)).await;
    let reply = suite::get_after(&client, "/", None).await;
    assert_eq!(reply.status, 500);
    let advice = ".app_data(web::ThinData(etiquette.clone()))";
    assert!(reply.body.contains(advice), "{:?}", reply.body);
}

#[actix_web::test]
async fn web_data_registration_works_too() {
    let etiquette = Etiquette::initiate(2).unwrap();
    let (probe, _signals) = Probe::new();
    let app = App::new()
        .app_data(web::Data::new(etiquette.clone()))
        .app_data(web::ThinData(probe.clone()))
        .route("/safe", web::get().to(safe));
    let client = start(test::init_service(app)).await;
    assert_eq!(suite::get_after(&client, "/safe", None).await.status, 200);
    within("the release of the queue", etiquette.release()).await;
    assert_eq!(probe.safe(), 1);
}

#[actix_web::test]
async fn tasks_outlive_the_workers_that_accepted_them() {
    // One bound across every worker: 2 run, the rest wait in the queue.
    let etiquette = Builder::new().max_concurrent_tasks(2).build().unwrap();
    let (probe, mut signals) = Probe::new();
    let (queue, shared) = (etiquette.clone(), probe.clone());
    let server = HttpServer::new(move || app(queue.clone(), shared.clone()))
        .workers(3)
        .disable_signals()
        .bind(socket::LOOPBACK)
        .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    let serving = tokio::spawn(server);

    // A fresh connection per request spreads them over the workers.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..6 {
        socket::get_200(&http, &format!("{base}/try-block")).await;
    }
    within(
        "the signals of 2 running /try-block tasks",
        signals.wait_for(2),
    )
    .await;
    let stats = etiquette.stats();
    assert_eq!((stats.running, stats.queued), (2, 4));

    // Stop the server and its workers' runtimes while the tasks are in flight.
    within("the actix server to stop gracefully", handle.stop(true)).await;
    socket::ended("the actix server task to end", serving).await;

    probe.open_gate();
    let report = within("the release of the queue", etiquette.release()).await;
    assert_eq!(
        (report.accepted, report.completed, report.cancelled),
        (6, 6, 0)
    );
}

#[actix_web::test]
async fn the_dashboard_page_is_served_with_a_trailing_slash_too() {
    let etiquette = Etiquette::initiate(1).unwrap();
    let client = <Actix as Framework>::dashboard_app(Dashboard::new(&etiquette)).await;
    let page = suite::get_after(&client, "/etiquette/", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<script src="./dashboard.js" defer></script>"#)
    );
}

/// The dashboards, each in a scope at its path, served on 127.0.0.1:`port`
/// by one worker.
fn serve_dashboards(
    port: u16,
    dashboards: Vec<(&'static str, Dashboard)>,
) -> socket::RunningServer {
    let listener = socket::listener(port).into_std().unwrap();
    let server = HttpServer::new(move || {
        dashboards
            .iter()
            .fold(App::new(), |app, (path, dashboard)| {
                app.service(etiquette_actix::dashboard(path, dashboard.clone()))
            })
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    let running = tokio::spawn(server);
    let (stop, stopped) = socket::shutdown_signal();
    let serving = async move {
        stopped.await;
        handle.stop(true).await;
        running.await.unwrap()
    };
    let base = format!("http://127.0.0.1:{port}");
    socket::RunningServer::spawn("the actix server", base, stop, serving)
}

#[actix_web::test]
async fn the_dashboard_in_chromium() {
    crate::browser::walk_through("actix", serve_dashboards).await;
}
