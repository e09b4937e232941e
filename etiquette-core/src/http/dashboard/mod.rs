//! The live dashboard every web adapter mounts (feature `dashboard`),
//! written once: its options ([`Dashboard`]), its routing table
//! (`routes.rs`), what it answers (`answer.rs`), the board it shows
//! (`board.rs`, kept by `follow.rs`), the JSON the page reads (`json.rs`),
//! the live stream (`live.rs`) and the page itself (`assets/`). An adapter
//! turns its framework's request into a [`DashboardRequest`] and the
//! [`DashboardResponse`] into its framework's response, and nothing else.

mod answer;
mod board;
mod follow;
mod json;
mod live;
mod routes;

use std::fmt;
use std::sync::Arc;

pub use answer::{DashboardBody, DashboardRequest, DashboardResponse, SseFrames};
pub(crate) use board::Board;

use self::json::View;
use self::routes::{Refusal, Route};
use crate::backend::{Backend, Memory};
use crate::{Decorum, Etiquette, TaskId, TaskLookupError, UnknownTask};

/// The request header the dashboard's page sends with every action
/// (cancel, retry), which the dashboard requires: a form posted from
/// another site cannot send it, so an action cannot be forged from another
/// origin.
pub const ACTION_HEADER: &str = "x-etiquette-dashboard";

/// A live dashboard of one queue, which a web adapter mounts with one line
/// (`etiquette_axum::dashboard`, `etiquette_actix::dashboard`,
/// `etiquette_poem::dashboard`).
///
/// The page shows the queue's counters and its rates over the last five
/// minutes (a chart), the tasks running now with their progress, those
/// waiting to retry, the recent failures with their errors and the recent
/// outcomes, each typed job named by its kind ([`Job::NAME`](crate::Job::NAME));
/// each task has a page of its own with its events. It updates
/// live over Server-Sent Events and shows when it lost the server and
/// when it is back. Its HTML, CSS and script are embedded in the binary:
/// nothing is loaded from elsewhere.
///
/// # What it lets a visitor see and do
///
/// Read-only unless the application says otherwise:
///
/// | option | default | what it does |
/// |--------|---------|--------------|
/// | [`allow_cancel`](Self::allow_cancel) | `false` | a Cancel button on each running task, each task waiting to retry, and each unfinished task's page; without it the cancel endpoint answers `403 Forbidden` |
/// | [`allow_retry`](Self::allow_retry) | `false` | a Retry button on each recent failure of a typed job and on the page of each failed, timed-out or cancelled typed job, which puts a typed job back in line under the same id ([`Decorum::retry_task`]); without it the retry endpoint answers `403 Forbidden` |
/// | [`show_errors`](Self::show_errors) | `true` | the error texts of failed and retrying tasks (the task's error and its sources, as the queue logs them); without it they never leave the server |
/// | [`show_progress_messages`](Self::show_progress_messages) | `true` | the messages tasks report with their progress; without it only the fractions are sent |
///
/// Errors are shown by default because they are what an operator opens a
/// dashboard for; turn them off where they may carry personal data or
/// secrets. A job's arguments are never shown: the dashboard knows tasks
/// by their events, which do not carry them.
///
/// The dashboard has no authentication of its own: mount it behind the
/// application's (each adapter's docs show how), as you would an admin
/// page. Its actions are `POST` requests that must carry the
/// [`ACTION_HEADER`] the page sends, so they cannot be forged by a form
/// on another site.
///
/// # What it costs
///
/// The dashboards of one queue share one board, made by the first: a
/// follower on the queue's spawner takes in every task event (as one more
/// subscriber of [`Decorum::subscribe`], so each event takes the event
/// hub's lock) and samples [`Stats`](crate::Stats) every second. It keeps
/// at most 300 samples, the last 50 outcomes and 50 failures, and the
/// events of the last 256 tasks seen (64 each, at most 16 of them
/// progress reports). Make the dashboard when the queue is built: a task
/// that started before is shown from its next event on (and from the
/// queue's [`event_buffer`](crate::Builder::event_buffer), if it keeps
/// one). The follower ends when the queue closes its event streams.
///
/// The counters are this process's; on a durable backend, the tasks and
/// events are every process's that the backend announces here, and a
/// section shows the jobs it stores across every process (queued,
/// scheduled, running, waiting to retry; [`Decorum::stored_jobs`], asked
/// every two seconds, each count capped at what the backend says).
///
/// ```
/// use etiquette_core::Etiquette;
/// use etiquette_core::dashboard::{Dashboard, DashboardBody, DashboardRequest};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let etiquette = Etiquette::initiate(4)?;
/// let dashboard = Dashboard::new(&etiquette).allow_cancel(true);
///
/// // What a web adapter does with each request under the mount point:
/// let request = DashboardRequest {
///     method: "GET",
///     path: "/api/snapshot",
///     original_path: "/etiquette/api/snapshot",
///     action_header: None,
/// };
/// let response = dashboard.answer(request).await;
/// assert_eq!(response.status, 200);
/// let DashboardBody::Text(json) = response.body else { unreachable!() };
/// let snapshot: serde_json::Value = serde_json::from_str(&json)?;
/// assert_eq!(snapshot["options"]["cancel"], true);
/// assert_eq!(snapshot["options"]["retry"], false);
/// assert_eq!(snapshot["queue"]["max_concurrent_tasks"], 4);
/// # Ok(()) }
/// ```
#[must_use]
pub struct Dashboard<B: Backend = Memory> {
    decorum: Decorum<B>,
    board: Arc<Board>,
    view: View,
}

impl<B: Backend> Clone for Dashboard<B> {
    fn clone(&self) -> Self {
        Self {
            decorum: self.decorum.clone(),
            board: Arc::clone(&self.board),
            view: self.view,
        }
    }
}

impl<B: Backend> fmt::Debug for Dashboard<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dashboard")
            .field("allow_cancel", &self.view.cancel)
            .field("allow_retry", &self.view.retry)
            .field("show_errors", &self.view.errors)
            .field("show_progress_messages", &self.view.messages)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Dashboard<B> {
    /// A read-only dashboard of `queue` (an [`Etiquette`] or a
    /// [`Decorum`]), showing errors and progress messages.
    pub fn new(queue: impl Into<Decorum<B>>) -> Self {
        let decorum = queue.into();
        let board = follow::board_of(&decorum.inner);
        Self {
            decorum,
            board,
            view: View::default(),
        }
    }

    /// Whether visitors may cancel tasks (off by default): the page shows a
    /// Cancel button on each unfinished task, and `POST
    /// api/tasks/{id}/cancel` cancels it, as
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel) does.
    pub fn allow_cancel(mut self, allow: bool) -> Self {
        self.view.cancel = allow;
        self
    }

    /// Whether visitors may retry failed and cancelled typed jobs (off by
    /// default): the page shows a Retry button on each recent failure of a
    /// typed job and on the page of each failed, timed-out or cancelled
    /// typed job (known by its name, which the page shows beside its id;
    /// a closure task, which cannot run again, gets no button), and `POST
    /// api/tasks/{id}/retry` puts the job back in line, due now, under the
    /// same id, as [`Decorum::retry_task`] does. A task that cannot be
    /// retried (a closure task, one that succeeded or has not finished,
    /// one whose unique key a live task holds) is answered `409 Conflict`
    /// with the reason, which the page shows. A retried task leaves the
    /// recent failures (its failure stays in its events and among the
    /// recent outcomes) and shows as it runs again.
    pub fn allow_retry(mut self, allow: bool) -> Self {
        self.view.retry = allow;
        self
    }

    /// Whether the error texts of failed and retrying tasks are shown (on
    /// by default).
    pub fn show_errors(mut self, show: bool) -> Self {
        self.view.errors = show;
        self
    }

    /// Whether the messages tasks report with their progress are shown (on
    /// by default).
    pub fn show_progress_messages(mut self, show: bool) -> Self {
        self.view.messages = show;
        self
    }

    /// Answers one request under the dashboard's mount point: what every
    /// web adapter calls.
    ///
    /// | path (under the mount point) | method | answer |
    /// |------------------------------|--------|--------|
    /// | (none), `/` | `GET` | the page |
    /// | `/dashboard.css`, `/dashboard.js` | `GET` | its style and script |
    /// | `/api/snapshot` | `GET` | the board as JSON |
    /// | `/api/stream` | `GET` | the board live, as Server-Sent Events |
    /// | `/api/tasks/{id}` | `GET` | a task's status and events as JSON; `404` if unknown |
    /// | `/api/tasks/{id}/cancel` | `POST` | `200` and the task cancelled; `403` unless [allowed](Self::allow_cancel) or without the [`ACTION_HEADER`]; `404` if unknown; `409` if it had finished |
    /// | `/api/tasks/{id}/retry` | `POST` | `200` and the task back in line; `403` unless [allowed](Self::allow_retry) or without the [`ACTION_HEADER`]; `404` if unknown; `409` with the reason if it cannot be retried ([`RetryTaskError`](crate::RetryTaskError)); `503` if the queue is full or released |
    ///
    /// Anything else is answered `404`, a wrong method `405` with `Allow`,
    /// a malformed id `400`, a backend that cannot be asked `503`; each
    /// with its reason as a plain-text body.
    pub async fn answer(&self, request: DashboardRequest<'_>) -> DashboardResponse {
        let method = request.method;
        // A framework nesting the dashboard at `/etiquette` hands it `/`
        // for `/etiquette` too: only the original path tells them apart.
        let path = match request.path {
            "/" if !request.original_path.ends_with('/') => "",
            path => path,
        };
        let route = match Route::of(method, path) {
            Ok(route) => route,
            Err(refusal) => {
                let allow = refusal.allow();
                return DashboardResponse::refused(&refusal, allow);
            }
        };
        match route {
            Route::PageAtMount => {
                let base = routes::base_at_mount(request.original_path);
                DashboardResponse::page(method, routes::page(&base))
            }
            Route::Page => DashboardResponse::page(method, routes::page("./")),
            Route::Asset(asset) => DashboardResponse::text(method, asset.content_type, asset.body),
            Route::Snapshot => DashboardResponse::json(method, &self.snapshot()),
            Route::Stream => {
                let queue = Arc::downgrade(&self.decorum.inner.shared);
                let counters: live::Counters = Arc::new(move || {
                    let shared = queue.upgrade()?;
                    Some((shared.stats(), shared.is_released()))
                });
                let frames = live::frames(Arc::clone(&self.board), self.view, counters);
                DashboardResponse::events(Box::pin(frames))
            }
            Route::Task(id) => self.task(method, id).await,
            Route::Cancel(id) => self.cancel(id, request.action_header).await,
            Route::Retry(id) => self.retry(id, request.action_header).await,
        }
    }

    /// The board, with the counters now.
    fn snapshot(&self) -> serde_json::Value {
        let stats = self.decorum.stats();
        let released = self.decorum.is_released();
        self.board.read(|state| {
            self.view
                .snapshot(self.board.limits, state, &stats, released)
        })
    }

    async fn task(&self, method: &str, id: TaskId) -> DashboardResponse {
        let status = match self.decorum.status(id).await {
            Ok(status) => status,
            Err(error) => return DashboardResponse::refused(&error, None),
        };
        let task = self.board.read(|state| {
            let history = state.history(id);
            (status.is_some() || history.is_some()).then(|| {
                self.view
                    .task(id, status.as_ref(), state.job_of(id), history)
            })
        });
        match task {
            Some(task) => DashboardResponse::json(method, &task),
            None => DashboardResponse::refused(&UnknownTask(id), None),
        }
    }

    async fn cancel(&self, id: TaskId, action_header: Option<&[u8]>) -> DashboardResponse {
        if !self.view.cancel {
            return DashboardResponse::refused(&Refusal::CancelNotAllowed, None);
        }
        if action_header.is_none() {
            return DashboardResponse::refused(&Refusal::NotFromThePage, None);
        }
        let handle = match TaskLookupError::check(id, self.decorum.find(id).await) {
            Ok(handle) => handle,
            Err(error) => return DashboardResponse::refused(&error, None),
        };
        match handle.cancel().await {
            Ok(true) => {
                let body = serde_json::json!({ "id": id, "cancelled": true });
                DashboardResponse::json("POST", &body)
            }
            Ok(false) => DashboardResponse::refused(&Refusal::Finished(id), None),
            Err(error) => DashboardResponse::refused(&error, None),
        }
    }
}

impl<B: Backend> Dashboard<B> {
    async fn retry(&self, id: TaskId, action_header: Option<&[u8]>) -> DashboardResponse {
        if !self.view.retry {
            return DashboardResponse::refused(&Refusal::RetryNotAllowed, None);
        }
        if action_header.is_none() {
            return DashboardResponse::refused(&Refusal::NotFromThePage, None);
        }
        match self.decorum.retry_task(id).await {
            Ok(_) => {
                let body = serde_json::json!({ "id": id, "retried": true });
                DashboardResponse::json("POST", &body)
            }
            Err(error) => DashboardResponse::refused(&error, None),
        }
    }
}

impl<B: Backend> From<Etiquette<B>> for Dashboard<B> {
    /// A [read-only dashboard](Dashboard::new) of the queue.
    fn from(etiquette: Etiquette<B>) -> Self {
        Self::new(etiquette)
    }
}

impl<B: Backend> From<&Etiquette<B>> for Dashboard<B> {
    /// A [read-only dashboard](Dashboard::new) of the queue.
    fn from(etiquette: &Etiquette<B>) -> Self {
        Self::new(etiquette)
    }
}

impl<B: Backend> From<Decorum<B>> for Dashboard<B> {
    /// A [read-only dashboard](Dashboard::new) of the queue.
    fn from(decorum: Decorum<B>) -> Self {
        Self::new(decorum)
    }
}
