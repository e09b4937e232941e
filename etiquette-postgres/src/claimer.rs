//! A process's claimer: the one task that takes due jobs of a queue into
//! the process, as many as it has room for, and keeps their leases alive.
//!
//! * It claims when there is room (attempts running here, or claimed and
//!   not yet taken in, below `local_limit`), woken by
//!   the [`Listener`] (a job was added, or the LISTEN connection came
//!   back), by room freed, or by a poll interval: the fallback that makes
//!   it work without notifications (`notify: false`, for transaction-pooling
//!   proxies) and catches jobs that became due by time.
//! * Every `heartbeat` it renews the leases of all the jobs it holds in one
//!   statement, until their outcomes are written ([`Leases`]); a job whose
//!   lease was lost (rescued by another process after this one stalled) is
//!   reported in [`Claimer::lost`], so that its attempt is cancelled here.
//! * Every `rescue` interval it rescues expired leases of any process: no
//!   leader; a process that dies (`kill -9`, OOM) stops heartbeating, and
//!   its jobs are claimable again once their leases expire.
//! * It makes each claimed row a job again ([`Jobs`]); a row it cannot (a
//!   kind this process does not know, arguments that no longer
//!   deserialise) fails at once with the reason, through the completer,
//!   instead of being run, retried or left running.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::Config;

use etiquette_core::error_chain;

use crate::completer::{Completer, End};
use crate::connection::{Pause, Session, connect};
use crate::jobs::{self, Claimed, Statements};
use crate::leases::Leases;
use crate::listener::{Events, Listener};
use crate::registry::{Attempt, Jobs};

mod stopping;

use stopping::Stopping;

/// A claimed job made again from its row, ready to run its attempt.
pub(crate) struct Ready {
    pub(crate) job: Claimed,
    /// Its kind's `Job::NAME`.
    pub(crate) kind: &'static str,
    /// Makes the attempt's future.
    pub(crate) make: Attempt,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

/// How a claimer works its queue.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The queue it claims from.
    pub(crate) queue: String,
    /// This process, as the owner of its leases.
    pub(crate) owner: i64,
    /// How long a claim holds a job without a heartbeat.
    pub(crate) lease: Duration,
    /// How often the leases of held jobs are renewed: well within `lease`.
    pub(crate) heartbeat: Duration,
    /// How often it looks for due jobs when nothing woke it.
    pub(crate) poll: Duration,
    /// How often it rescues expired leases.
    pub(crate) rescue: Duration,
    /// Jobs held at once by this process.
    pub(crate) local_limit: usize,
    /// Jobs running at once across every process, if bounded.
    pub(crate) max_running: Option<i64>,
    /// Whether to LISTEN for added jobs.
    pub(crate) listen: bool,
}

/// A running claimer; stopped when dropped (its leases then expire and
/// other processes rescue its jobs, as after a crash).
#[derive(Debug)]
pub(crate) struct Claimer {
    pub(crate) jobs: mpsc::Receiver<Ready>,
    stopping: Arc<Stopping>,
    /// Held attempts to cancel here, as `(id, attempt)`: their lease was
    /// lost (their outcome would be refused anyway), or a cancel from some
    /// process asked them to stop.
    pub(crate) lost: mpsc::UnboundedReceiver<(i64, i32)>,
    task: JoinHandle<()>,
    _listener: Option<Listener>,
}

impl Drop for Claimer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Claimer {
    /// Starts claiming with `client` (its own connection), on the current
    /// tokio runtime; `config` is for the LISTEN connection. Only rows of
    /// the kinds in `kinds` are claimed; one whose arguments no longer
    /// decode fails through `completer` (of the same owner), whose leases
    /// it renews.
    pub(crate) fn start(
        (client, config): (Session, Config),
        statements: Statements,
        settings: Settings,
        (kinds, completer, events): (Arc<Jobs>, Arc<Completer>, Option<Events>),
    ) -> Self {
        let listener = settings
            .listen
            .then(|| Listener::start(config.clone(), &statements.channel, events));
        let wake = listener.as_ref().map(|listener| Arc::clone(&listener.wake));
        let leases = completer.leases().clone();
        let stopping = Arc::new(Stopping::default());
        let (deliver, jobs) = mpsc::channel(settings.local_limit.max(1));
        let (report_lost, lost) = mpsc::unbounded_channel();
        let names = kinds.names();
        let task = tokio::spawn(claim_loop(Loop {
            client,
            names,
            config,
            statements,
            settings,
            leases,
            stopping: Arc::clone(&stopping),
            wake,
            deliver,
            kinds,
            completer,
            report_lost,
        }));
        Self {
            jobs,
            stopping,
            lost,
            task,
            _listener: listener,
        }
    }

    /// The next claimed job; `None` once the claimer stopped. (The
    /// backend's feeder reads `jobs` beside `lost` instead.)
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn next(&mut self) -> Option<Ready> {
        self.jobs.recv().await
    }

    /// A claimed job already delivered and not yet taken, if any.
    pub(crate) fn try_next(&mut self) -> Option<Ready> {
        self.jobs.try_recv().ok()
    }

    /// Claims nothing more (a release began); held jobs keep their leases
    /// until their outcomes are written.
    /// Resolves once no claim is under way: every job claimed so far has
    /// been delivered (read them with [`try_next`](Self::try_next)).
    pub(crate) async fn stop_claiming(&self) {
        let stopping = &self.stopping;
        // A loop waiting between claims needs no wake-up: its next claim
        // sees `stopped` and claims nothing.
        stopping.stopped.store(true, SeqCst);
        loop {
            let mut ended = std::pin::pin!(stopping.claimed.notified());
            ended.as_mut().enable();
            // After `stopped` is set: a claim that began before it is seen
            // here; one that begins after sees `stopped` and claims nothing.
            if !stopping.claiming.load(SeqCst) {
                return;
            }
            ended.await;
        }
    }
}

struct Loop {
    client: Session,
    /// The kinds' names, the only rows a claim takes.
    names: Vec<&'static str>,
    /// To connect again after the connection was lost.
    config: Config,
    statements: Statements,
    settings: Settings,
    /// Its owner's, shared with the completer.
    leases: Leases,
    stopping: Arc<Stopping>,
    wake: Option<Arc<Notify>>,
    deliver: mpsc::Sender<Ready>,
    kinds: Arc<Jobs>,
    completer: Arc<Completer>,
    report_lost: mpsc::UnboundedSender<(i64, i32)>,
}

async fn claim_loop(mut this: Loop) {
    let mut heartbeat = tokio::time::interval(this.settings.heartbeat);
    let mut rescue = tokio::time::interval(this.settings.rescue);
    let never = Arc::new(Notify::new());
    let mut pause = Pause::new();
    loop {
        // A database restart closes the connection: connect again, with a
        // growing pause, then renew the leases at once (they may be close
        // to expiring) before claiming.
        if this.client.is_closed() {
            match connect(&this.config).await {
                Ok(client) => {
                    tracing::info!("the claimer's connection is back");
                    this.client = client;
                    pause.reset();
                    this.heartbeat().await;
                }
                Err(error) => {
                    tracing::warn!(%error, pause = ?pause.next(), "the claimer cannot connect; trying again");
                    pause.wait().await;
                    continue;
                }
            }
        }
        // Set before the claim looks at `stopped` (see `stop_claiming`).
        this.stopping.claiming.store(true, SeqCst);
        let claimed = this.claim().await;
        this.stopping.claiming.store(false, SeqCst);
        this.stopping.claimed.notify_waiters();
        let full = match claimed {
            Ok(full) => full,
            Err(error) => {
                tracing::warn!(%error, "claiming jobs failed; trying again at the next wake-up");
                false
            }
        };
        if full {
            continue; // more may be due: claim again at once
        }
        let wake = this.wake.clone().unwrap_or_else(|| Arc::clone(&never));
        tokio::select! {
            () = wake.notified() => {}
            () = this.leases.freed() => {}
            () = tokio::time::sleep(this.settings.poll) => {}
            _ = heartbeat.tick() => {
                this.heartbeat().await;
            }
            _ = rescue.tick() => {
                if let Err(error) = jobs::rescue(&this.client, &this.statements).await {
                    tracing::warn!(%error, "rescuing expired leases failed");
                }
            }
        }
    }
}

impl Loop {
    /// Claims as many due jobs as there is room for; whether it got all it
    /// asked for (then more may be waiting).
    async fn claim(&mut self) -> Result<bool, tokio_postgres::Error> {
        if self.stopping.stopped.load(SeqCst) {
            return Ok(false);
        }
        let room = self
            .settings
            .local_limit
            .saturating_sub(self.leases.running());
        if room == 0 {
            return Ok(false);
        }
        let limit = i64::try_from(room).unwrap_or(i64::MAX);
        let settings = &self.settings;
        let claimed = match settings.max_running {
            None => {
                jobs::claim(
                    &self.client,
                    &self.statements,
                    (&settings.queue, &self.names),
                    settings.owner,
                    limit,
                    settings.lease,
                )
                .await?
            }
            Some(max) => {
                jobs::claim_bounded(
                    &mut self.client,
                    &self.statements,
                    (&settings.queue, &self.names),
                    settings.owner,
                    (limit, max),
                    settings.lease,
                )
                .await?
            }
        };
        let got = claimed.len();
        for job in claimed {
            // Held from its claim until its outcome is written, whatever
            // becomes of it. Claimed again by this process after its lease
            // was lost: the older attempt still running here is lost.
            if let Some(older) = self.leases.claimed(job.id, job.attempt) {
                let _ = self.report_lost.send((job.id, older));
            }
            let (kind, make) = match self.kinds.decode(&job.name, job.args.clone()) {
                Ok(decoded) => decoded,
                Err(error) => {
                    // Its arguments no longer decode (its kind is known:
                    // the claim takes no other): this code can never run
                    // it, and it would only be claimed and rescued for ever.
                    tracing::error!(job_id = job.id, %error, "a stored job cannot be run");
                    let end = End::Failed(error_chain(&error));
                    self.completer.end(job.id, job.attempt, end);
                    continue;
                }
            };
            let (id, attempt) = (job.id, job.attempt);
            if self.deliver.send(Ready { job, kind, make }).await.is_err() {
                // The consumer is gone: given back, claimable at once.
                self.completer.end(id, attempt, End::HandBack);
            }
        }
        Ok(got == room)
    }

    /// Renews every held lease in one statement, of the attempts running
    /// here and of those whose outcomes are being written; reports the lost
    /// ones still running.
    async fn heartbeat(&self) {
        let held = self.leases.leased();
        if held.is_empty() {
            return;
        }
        let ids: Vec<i64> = held.iter().map(|&(id, _)| id).collect();
        let settings = &self.settings;
        let renewed = jobs::heartbeat(
            &self.client,
            &self.statements,
            settings.owner,
            &ids,
            settings.lease,
        )
        .await;
        let renewed = match renewed {
            Ok(renewed) => renewed,
            Err(error) => {
                tracing::warn!(%error, "renewing leases failed");
                return;
            }
        };
        let kept: HashSet<(i64, i32)> = renewed.iter().map(|&(held, _)| held).collect();
        for (id, attempt) in held.into_iter().filter(|held| !kept.contains(held)) {
            // Written meanwhile, or lost: only an attempt still running
            // here is cancelled.
            if self.leases.lost(id, attempt) {
                let _ = self.report_lost.send((id, attempt));
            }
        }
        for ((id, attempt), asked) in renewed {
            // A cancel asked from any process. An attempt that ended here
            // needs no stop: its outcome is written, and a cancel asked
            // meanwhile wins over a retry.
            if asked && self.leases.is_running(id, attempt) {
                let _ = self.report_lost.send((id, attempt));
            }
        }
    }
}

#[cfg(test)]
mod tests;
