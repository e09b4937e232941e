//! The PostgreSQL backend under load: the programs `bench/postgres.sh`
//! runs against one throwaway server (it starts the server, the baselines
//! and the load; see there). Each subcommand prints one line of
//! `key=value` figures on stdout.
//!
//! ```text
//! pg_bench work URL LIMIT                 a worker process: says `ready` once connected,
//!                                         starts claiming on a `go` line, releases at EOF
//! pg_bench race JOBS PROCS HANDSHAKE URL PENDING_SQL -- CMD [ARG]...
//!                                         starts PROCS × CMD, times until PENDING_SQL is false
//! pg_bench add-seq URL N                  N adds, one after the other
//! pg_bench add-many URL N CHUNK           Postgres::add_many, CHUNK jobs a call
//! pg_bench add-concurrent URL N TASKS     TASKS tasks adding N in all, each in a loop
//! pg_bench latency URL RATE SECONDS LIMIT jobs added at RATE/s while this process works
//!                                         the queue: from add() to the job's start
//! pg_bench prune URL RETENTION_S          one pruning cycle, timed
//! pg_bench serve URL PORT                 the HTTP routes wrk measures
//! ```
//!
//! `PG_BENCH_NOTIFY=0` turns LISTEN/NOTIFY off (`Postgres::notify(false)`:
//! processes poll), to see what the notifications cost.

use std::convert::Infallible;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use etiquette_core::{Decorum, Etiquette, Job, TaskContext};
use etiquette_postgres::{Jobs, Postgres};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_postgres::{Client, NoTls};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Jobs run by this process.
static RAN: AtomicU64 = AtomicU64::new(0);

/// A job that does nothing.
#[derive(Serialize, Deserialize)]
struct Trivial;

impl Job for Trivial {
    const NAME: &'static str = "trivial";
    type Error = Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Infallible> {
        RAN.fetch_add(1, Relaxed);
        Ok(())
    }
}

/// Microseconds from `added_us` (when `add` was called) to the job's start.
static LATENCIES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// A job that notes how long after its add it started.
#[derive(Serialize, Deserialize)]
struct Stamp {
    added_us: u64,
}

impl Job for Stamp {
    const NAME: &'static str = "stamp";
    type Error = Infallible;

    async fn run(&self, _context: TaskContext) -> Result<(), Infallible> {
        let waited = now_us().saturating_sub(self.added_us);
        LATENCIES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waited);
        Ok(())
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

async fn backend(url: &str, work: bool) -> Result<Postgres, Error> {
    let jobs = Jobs::new().register::<Trivial>()?.register::<Stamp>()?;
    // PG_BENCH_NOTIFY=0: no LISTEN/NOTIFY (processes poll), to measure
    // what notifications cost.
    let notify = std::env::var("PG_BENCH_NOTIFY").map_or(true, |value| value != "0");
    let builder = Postgres::builder(url, jobs)?.work(work).notify(notify);
    Ok(builder.connect().await?)
}

async fn connect(url: &str) -> Result<Client, Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn arg<T: std::str::FromStr>(args: &[String], index: usize, what: &str) -> Result<T, Error> {
    args.get(index)
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| {
            format!("argument {index} ({what}) missing or invalid; see the header of pg_bench.rs")
                .into()
        })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map_or("", String::as_str);
    let rest = &args[args.len().min(1)..];
    match command {
        "work" => work(&arg::<String>(rest, 0, "url")?, arg(rest, 1, "limit")?).await,
        "race" => race(rest).await,
        "add-seq" | "add-many" | "add-concurrent" => add(command, rest).await,
        "latency" => latency(rest).await,
        "prune" => prune(&arg::<String>(rest, 0, "url")?, arg(rest, 1, "retention")?).await,
        "serve" => serve(&arg::<String>(rest, 0, "url")?, arg(rest, 1, "port")?).await,
        _ => Err("usage: see the header of etiquette-postgres/examples/pg_bench.rs".into()),
    }
}

/// A worker process, in step with `race`: connects (and migrates), says
/// `ready`, claims from the `go` line on, and releases when stdin closes.
async fn work(url: &str, limit: usize) -> Result<(), Error> {
    let postgres = backend(url, true).await?;
    println!("ready");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        match lines.next_line().await? {
            Some(line) if line == "go" => break,
            Some(_) => {}
            None => return Ok(()),
        }
    }
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(limit)
        .queue_capacity(limit.max(1024))
        .build_on(postgres)?;
    while lines.next_line().await?.is_some() {}
    let report = etiquette.release_timeout(Duration::from_secs(30)).await;
    println!("ran={} completed={}", RAN.load(Relaxed), report.completed);
    Ok(())
}

/// Starts `PROCS` copies of a command and times them until `PENDING_SQL`
/// answers false (polled every 10 ms on a connection of its own). With
/// `HANDSHAKE` 1 the clock starts once every copy said `ready` and was
/// told `go`, and stdin is closed at the end; with 0 the clock starts at
/// the spawn, and the copies are killed at the end.
async fn race(args: &[String]) -> Result<(), Error> {
    let jobs: u64 = arg(args, 0, "jobs")?;
    let procs: usize = arg(args, 1, "procs")?;
    let handshake = arg::<u8>(args, 2, "handshake")? == 1;
    let url: String = arg(args, 3, "url")?;
    let pending: String = arg(args, 4, "pending sql")?;
    let command = match args.get(5).map(String::as_str) {
        Some("--") if args.len() > 6 => &args[6..],
        _ => return Err("race: `--` and a command expected".into()),
    };
    let limit = Duration::from_secs(
        std::env::var("RACE_TIMEOUT_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(900),
    );
    let (said, mut lines) = mpsc::unbounded_channel::<String>();
    let mut children = Vec::new();
    for _ in 0..procs {
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(if handshake {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()?;
        if let Some(out) = child.stdout.take() {
            let said = said.clone();
            tokio::spawn(async move {
                let mut out = BufReader::new(out).lines();
                while let Ok(Some(line)) = out.next_line().await {
                    let _ = said.send(line);
                }
            });
        }
        children.push(child);
    }
    drop(said);
    if handshake {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut ready = 0;
        while ready < procs {
            match tokio::time::timeout_at(deadline, lines.recv()).await {
                Ok(Some(line)) if line == "ready" => ready += 1,
                Ok(Some(_)) => {}
                Ok(None) => return Err("race: a worker ended before it was ready".into()),
                Err(_) => return Err("race: the workers were not ready within 120 s".into()),
            }
        }
    }
    let client = connect(&url).await?;
    // The poll along the queues' indexes: planned from statistics taken
    // before the run (every row waiting), a sequential scan looked as cheap
    // and walked every finished row, 100 ms of the server's CPU per poll.
    client.batch_execute("SET enable_seqscan = off").await?;
    let poll = client.prepare(&pending).await?;
    let pids: Vec<u32> = children
        .iter()
        .filter_map(tokio::process::Child::id)
        .collect();
    let cpu_before = cpu_seconds(&pids);
    let started = Instant::now();
    if handshake {
        for child in &mut children {
            if let Some(stdin) = child.stdin.as_mut() {
                stdin.write_all(b"go\n").await?;
                stdin.flush().await?;
            }
        }
    }
    let mut polls = 0_u64;
    loop {
        let busy: bool = client.query_one(&poll, &[]).await?.get(0);
        polls += 1;
        if !busy {
            break;
        }
        if started.elapsed() > limit {
            return Err(format!("race: jobs still pending after {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let client_cpu = cpu_seconds(&pids) - cpu_before;
    drop(client);
    for child in &mut children {
        if handshake {
            drop(child.stdin.take());
        } else {
            let _ = child.start_kill();
        }
    }
    for child in &mut children {
        if tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .is_err()
        {
            eprintln!("race: a worker did not stop within 60 s: killed");
            let _ = child.kill().await;
        }
    }
    let mut ran = 0_u64;
    while let Some(line) = lines.recv().await {
        let count = line
            .strip_prefix("ran=")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        ran += count.unwrap_or(0);
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = jobs as f64 / elapsed;
    println!(
        "elapsed_s={elapsed:.3} jobs_per_s={rate:.0} polls={polls} ran={ran} client_cpu_s={client_cpu:.3}"
    );
    Ok(())
}

/// The CPU time `pids` (and the children they reaped) used so far, from
/// `/proc`: the workers' own, without what they spent starting.
fn cpu_seconds(pids: &[u32]) -> f64 {
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // After the command's name: the state is field 3, utime,
            // stime, cutime and cstime fields 14 to 17.
            let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            rest.split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|field| field.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum();
    #[allow(clippy::cast_precision_loss)]
    let seconds = ticks as f64 / CLOCK_TICKS;
    seconds
}

/// Linux's `USER_HZ`, the unit of `/proc/<pid>/stat`'s times.
const CLOCK_TICKS: f64 = 100.0;

/// Adds on a process that works nothing (`work(false)`), timed from the
/// first add to the last answer.
async fn add(how: &str, args: &[String]) -> Result<(), Error> {
    let url: String = arg(args, 0, "url")?;
    let n: usize = arg(args, 1, "n")?;
    let etiquette = Etiquette::builder().build_on(backend(&url, false).await?)?;
    let decorum = etiquette.decorum();
    let started = Instant::now();
    match how {
        "add-seq" => {
            for _ in 0..n {
                decorum.job(Trivial).add().await?;
            }
        }
        "add-many" => {
            let chunk: usize = arg(args, 2, "chunk")?;
            let mut left = n;
            while left > 0 {
                let now = left.min(chunk.max(1));
                Postgres::add_many((0..now).map(|_| decorum.job(Trivial))).await?;
                left -= now;
            }
        }
        _ => {
            let tasks: usize = arg(args, 2, "tasks")?;
            let next = Arc::new(AtomicUsize::new(0));
            let mut adders = JoinSet::new();
            for _ in 0..tasks {
                let (decorum, next) = (decorum.clone(), Arc::clone(&next));
                adders.spawn(async move {
                    while next.fetch_add(1, Relaxed) < n {
                        decorum.job(Trivial).add().await?;
                    }
                    Ok::<(), etiquette_core::AddTaskError>(())
                });
            }
            while let Some(added) = adders.join_next().await {
                added??;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    etiquette.release_timeout(Duration::from_secs(5)).await;
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / elapsed;
    println!("jobs={n} elapsed_s={elapsed:.3} jobs_per_s={rate:.0}");
    Ok(())
}

/// Jobs added at a steady rate (each add on a task of its own, as from
/// concurrent requests) while this process works the queue: the time from
/// the call to `add` to the job's start, which includes the add's commit,
/// the notification and the claim.
async fn latency(args: &[String]) -> Result<(), Error> {
    let url: String = arg(args, 0, "url")?;
    let rate: f64 = arg(args, 1, "rate")?;
    let seconds: f64 = arg(args, 2, "seconds")?;
    let limit: usize = arg(args, 3, "limit")?;
    let etiquette = Etiquette::builder()
        .max_concurrent_tasks(limit)
        .build_on(backend(&url, true).await?)?;
    let decorum = etiquette.decorum();
    // The claimer's connections and LISTEN first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = (rate * seconds) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut adds = JoinSet::new();
    for _ in 0..total {
        tick.tick().await;
        let decorum = decorum.clone();
        adds.spawn(async move {
            let stamp = Stamp { added_us: now_us() };
            decorum.job(stamp).add().await.map(drop)
        });
    }
    while let Some(added) = adds.join_next().await {
        added??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waited = loop {
        let started = LATENCIES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if started.len() >= total {
            break started;
        }
        if Instant::now() > deadline {
            return Err("latency: jobs still not started after 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    etiquette.release_timeout(Duration::from_secs(10)).await;
    waited.sort_unstable();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((waited.len() as f64 * q).ceil() as usize).clamp(1, waited.len()) - 1;
        #[allow(clippy::cast_precision_loss)]
        let ms = waited[index] as f64 / 1000.0;
        ms
    };
    println!(
        "jobs={total} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
    Ok(())
}

/// One pruning cycle of the backend (its first, at start), timed until no
/// row finished more than `retention` seconds ago is left.
async fn prune(url: &str, retention: u64) -> Result<(), Error> {
    let client = connect(url).await?;
    let jobs = Jobs::new().register::<Trivial>()?;
    let postgres = Postgres::builder(url, jobs)?
        .work(false)
        .prune(
            Duration::from_secs(retention),
            Duration::from_secs(24 * 3600),
        )
        .connect()
        .await?;
    let started = Instant::now();
    let etiquette = Etiquette::builder().build_on(postgres)?;
    #[allow(clippy::cast_precision_loss)]
    let retention = retention as f64;
    let left = "SELECT EXISTS (SELECT 1 FROM etiquette.jobs
                WHERE finished_at < now() - $1 * interval '1 second')";
    loop {
        let any: bool = client.query_one(left, &[&retention]).await?.get(0);
        if !any {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("prune: rows still due after 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    etiquette.release_timeout(Duration::from_secs(5)).await;
    println!("prune_s={elapsed:.2}");
    Ok(())
}

/// A hand-made pool: `n` connections taken in turn (tokio-postgres
/// pipelines the statements sent on one connection meanwhile).
struct Pool {
    clients: Vec<Client>,
    next: AtomicUsize,
}

impl Pool {
    async fn new(url: &str, n: usize) -> Result<Self, Error> {
        let mut clients = Vec::with_capacity(n);
        for _ in 0..n {
            clients.push(connect(url).await?);
        }
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    fn get(&self) -> &Client {
        &self.clients[self.next.fetch_add(1, Relaxed) % self.clients.len()]
    }
}

#[derive(Clone)]
struct App {
    /// On PostgreSQL, in a process that only adds (`work(false)`).
    durable: Decorum<Postgres>,
    memory: etiquette_core::Decorum,
    pool_16: Arc<Pool>,
    pool_64: Arc<Pool>,
}

type Answer = Result<([(&'static str, String); 1], &'static str), (StatusCode, String)>;

fn failed(error: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

/// The same row as an add, written by hand: one insert and one commit per
/// request, over a pool.
async fn insert(pool: &Pool) -> Answer {
    let row = pool
        .get()
        .query_one(
            "INSERT INTO plain.tasks (queue, name, args) VALUES ('default', 'trivial', 'null')
             RETURNING id",
            &[],
        )
        .await
        .map_err(failed)?;
    Ok(([("x-task-id", row.get::<_, i64>(0).to_string())], "OK"))
}

/// The routes `bench/postgres.sh` loads with wrk; runs until killed.
async fn serve(url: &str, port: u16) -> Result<(), Error> {
    let durable = Etiquette::builder().build_on(backend(url, false).await?)?;
    let memory = Etiquette::initiate(16)?;
    let client = connect(url).await?;
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS plain;
             CREATE TABLE IF NOT EXISTS plain.tasks (LIKE etiquette.jobs INCLUDING ALL)",
        )
        .await?;
    let app = App {
        durable: durable.decorum(),
        memory: memory.decorum(),
        pool_16: Arc::new(Pool::new(url, 16).await?),
        pool_64: Arc::new(Pool::new(url, 64).await?),
    };
    let router = Router::new()
        .route("/noop", get(|| async { "OK" }))
        .route(
            "/add-task",
            get(|State(app): State<App>| async move {
                let task = app.durable.job(Trivial).add().await.map_err(failed)?;
                Ok::<_, (StatusCode, String)>(([("x-task-id", task.id().to_string())], "OK"))
            }),
        )
        .route(
            "/insert-16",
            get(|State(app): State<App>| async move { insert(&app.pool_16).await }),
        )
        .route(
            "/insert-64",
            get(|State(app): State<App>| async move { insert(&app.pool_64).await }),
        )
        .route(
            "/memory-add-task",
            get(|State(app): State<App>| async move {
                let task = app.memory.add_task(async {}).await.map_err(failed)?;
                Ok::<_, (StatusCode, String)>(([("x-task-id", task.id().to_string())], "OK"))
            }),
        )
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening");
    axum::serve(listener, router).await?;
    Ok(())
}
