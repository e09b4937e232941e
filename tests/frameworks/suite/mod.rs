//! The behaviour every adapter must show, whatever the framework.
//!
//! Each app serves the same routes (see `Framework::app`); tests wait on the
//! queue (release, stats), on task outcomes or on task signals, never on the
//! clock to let something happen. Every such wait, and every response with
//! its whole body, is bounded by [`within`], so that a stream that never
//! ends, a release that never drains or a signal that never comes fails the
//! test, naming what it waited for, instead of hanging it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use etiquette_core::backend::Backend;
use etiquette_core::{Builder, Dashboard, Etiquette};
use etiquette_tests::Probe;

/// What a test sees of a response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) task_id: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) allow: Option<String>,
    pub(crate) content_security_policy: Option<String>,
    pub(crate) body: String,
}

impl Reply {
    /// Reads what a test sees of any framework's response, once its whole
    /// body is in: `header` looks a header's value up by name, as text.
    pub(crate) fn read<'h>(
        status: u16,
        header: impl Fn(&str) -> Option<&'h str>,
        body: &[u8],
    ) -> Self {
        let text = |name| header(name).map(str::to_owned);
        Self {
            status,
            retry_after: text("retry-after"),
            task_id: text("x-task-id"),
            content_type: text("content-type"),
            allow: text("allow"),
            content_security_policy: text("content-security-policy"),
            body: String::from_utf8(body.to_vec()).expect("the body is UTF-8"),
        }
    }
}

/// Sends requests to an app in-process; tests send them through
/// [`get_after`] or [`send`], which bound each one.
pub(crate) trait Client {
    /// `method` (`GET`, `POST`, …) with extra request headers, whose values
    /// may be any bytes a header value may hold, and no body.
    fn send(
        &self,
        method: &'static str,
        uri: &str,
        headers: &[(&'static str, &[u8])],
    ) -> impl Future<Output = Reply>;
}

/// A framework under test: builds the app serving these routes, each
/// answering `OK` once its task is accepted:
///
/// | route              | task                                  | adds with      |
/// |--------------------|---------------------------------------|----------------|
/// | `/safe`            | `probe.add(1)`, id in `x-task-id`     | `add_task`     |
/// | `/racy`            | `probe.racy_increment()`              | `add_task`     |
/// | `/splat/{n}`       | `probe.add(n)`                        | `add_task`     |
/// | `/splat?n=N`       | `probe.add(N)`                        | `add_task`     |
/// | `/fail`, `/panic`  | `probe.fail()`, `probe.panic()`       | `add_task`     |
/// | `/try-block`       | `probe.block()`                       | `try_add_task` |
///
/// and `/status/{id}`, the task's status as JSON, or 404; `/progress`, a
/// task reporting progress (`etiquette_tests::reporting`), its id in
/// `x-task-id`; `/events/{id}` and `/events`, the adapter's SSE responses.
pub(crate) trait Framework {
    fn app(etiquette: Etiquette, probe: Probe) -> impl Future<Output = impl Client>;

    /// The routes that work on any backend: `/job`, `/status/{id}`,
    /// `/events/{id}` and `/events` (the in-memory app serves them too).
    fn job_app<B: Backend>(
        etiquette: Etiquette<B>,
        probe: Probe,
    ) -> impl Future<Output = impl Client>;

    /// `dashboard` mounted at `/etiquette` in one line, as the adapter's
    /// docs show.
    fn dashboard_app<B: Backend>(dashboard: Dashboard<B>) -> impl Future<Output = impl Client>;
}

async fn get_ok(client: &impl Client, uri: &str) {
    let reply = get_after(client, uri, None).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (200, "OK"),
        "GET {uri}"
    );
}

fn queue(limit: usize) -> Etiquette {
    Builder::new()
        .max_concurrent_tasks(limit)
        .event_buffer(256)
        .build()
        .unwrap()
}

/// Awaits `future`, failing after 5 seconds with what it waited for.
pub(crate) async fn within<T>(what: impl Display, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), future)
        .await
        .unwrap_or_else(|_| panic!("waited more than 5 seconds for {what}"))
}

/// GET `uri` with a `Last-Event-ID` header (none with `None`: a plain GET),
/// failing if the response and all its body take more than 5 seconds.
pub(crate) async fn get_after(
    client: &impl Client,
    uri: &str,
    last_event_id: Option<&[u8]>,
) -> Reply {
    let headers: &[(&'static str, &[u8])] = match last_event_id {
        Some(value) => &[("last-event-id", value)],
        None => &[],
    };
    let what = match last_event_id {
        Some(value) => format!(
            "the whole response to GET {uri} with Last-Event-ID {:?}",
            String::from_utf8_lossy(value)
        ),
        None => format!("the whole response to GET {uri}"),
    };
    within(what, client.send("GET", uri, headers)).await
}

/// `method` on `uri` with `headers`, failing if the response and all its
/// body take more than 5 seconds.
pub(crate) async fn send(
    client: &impl Client,
    method: &'static str,
    uri: &str,
    headers: &[(&'static str, &[u8])],
) -> Reply {
    let what = format!("the whole response to {method} {uri}");
    within(what, client.send(method, uri, headers)).await
}

mod backends;
mod dashboard;
mod jobs;
mod queueing;
mod sse;

pub(crate) use backends::{InMemory, Line, OnPostgres};
pub(crate) use dashboard::*;
pub(crate) use jobs::*;
pub(crate) use queueing::*;
pub(crate) use sse::*;
