//! Worker processes, really started: this test binary run again as a
//! worker ([`worker_process`], which does nothing unless a test started it
//! so), each with its own runtime, connections and leases, on one server.
//! A worker killed with SIGKILL mid-job, three sharing 10,000 jobs, and
//! the bound across three of them.
//!
//! A worker says what its jobs do on its stdout, one line each
//! (`started <n> <attempt>`, `ran <n> <attempt>`), and releases its queue
//! when its stdin closes: when the test is done with it, or dies.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use etiquette_core::{Etiquette, Job, RetryPolicy, TaskContext};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;
use tokio_postgres::Client;

use super::{connected, server};
use crate::testing::TempServer;
use crate::{Jobs, Postgres};

/// The environment variable holding a worker's [`Orders`], as JSON.
const ORDERS: &str = "ETIQUETTE_TEST_WORKER_ORDERS";
/// The prefix of a worker's lines meant for the test (libtest prints its
/// own).
const SAYS: &str = "etiquette-worker: ";

/// How a worker process works the queue.
#[derive(Serialize, Deserialize, Clone)]
struct Orders {
    url: String,
    /// Its `max_concurrent_tasks`.
    limit: usize,
    /// The bound across processes, if any.
    bound: Option<u32>,
    lease_ms: u64,
    /// Its jobs never end once started (a worker the test kills).
    stall: bool,
    /// Its jobs count themselves in the `gauge` table while they run, and
    /// wait (10 s at most) until the peak has reached this many.
    gauge: Option<i32>,
}

/// A job: its number, said when it starts and when it has run.
#[derive(Serialize, Deserialize)]
struct Mark {
    n: u32,
}

static WORKING: OnceLock<(Orders, Option<Client>)> = OnceLock::new();

/// Says `line` to the test, on stdout itself: libtest captures what
/// `println!` prints on its test thread.
fn say(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{SAYS}{line}");
}

impl Job for Mark {
    const NAME: &'static str = "mark";
    type Error = String;

    async fn run(&self, context: TaskContext) -> Result<(), String> {
        let (orders, gauge) = WORKING.get().ok_or("not in a worker process")?;
        let (n, attempt) = (self.n, context.attempt());
        say(&format!("started {n} {attempt}"));
        if orders.stall {
            std::future::pending::<()>().await;
        }
        if let (Some(target), Some(client)) = (orders.gauge, gauge) {
            count_in(client, target).await?;
        }
        say(&format!("ran {n} {attempt}"));
        Ok(())
    }
}

/// Counts the job in the `gauge` table while it waits for the peak to
/// reach `target`, then holds 20 ms more.
async fn count_in(client: &Client, target: i32) -> Result<(), String> {
    let failed = |error: tokio_postgres::Error| error.to_string();
    let bump = "UPDATE gauge SET now = now + 1, peak = greatest(peak, now + 1)";
    client.execute(bump, &[]).await.map_err(failed)?;
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let row = client.query_one("SELECT peak FROM gauge", &[]).await;
            if row.map_err(failed)?.get::<_, i32>(0) >= target {
                return Ok::<_, String>(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let drop = "UPDATE gauge SET now = now - 1";
    client.execute(drop, &[]).await.map_err(failed)?;
    reached.map_err(|_| format!("the peak stayed below {target} for 10 s"))?
}

fn kinds() -> Jobs {
    Jobs::new().register::<Mark>().expect("one kind")
}

/// A worker process, when a test of this module started this binary as
/// one; nothing otherwise.
#[test]
#[ignore = "a worker process, started by the tests of this module"]
fn worker_process() {
    let Ok(orders) = std::env::var(ORDERS) else {
        return;
    };
    let orders: Orders = serde_json::from_str(&orders).expect("orders as JSON");
    Runtime::new().expect("a runtime").block_on(work(orders));
}

async fn work(orders: Orders) {
    let gauge = match orders.gauge {
        None => None,
        Some(_) => {
            let (client, connection) = tokio_postgres::connect(&orders.url, tokio_postgres::NoTls)
                .await
                .expect("the gauge's connection");
            tokio::spawn(connection);
            Some(client)
        }
    };
    let _ = WORKING.set((orders.clone(), gauge));
    let mut builder = Postgres::builder(&orders.url, kinds())
        .expect("a valid url")
        .lease(Duration::from_millis(orders.lease_ms))
        .poll(Duration::from_millis(100));
    if let Some(bound) = orders.bound {
        builder = builder.max_running_across_processes(bound);
    }
    let queue = Etiquette::builder()
        .max_concurrent_tasks(orders.limit)
        .build_on(connected(builder).await)
        .expect("build");
    say("ready");
    let stdin_closed = tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    });
    let _ = stdin_closed.await;
    let report = queue.release_timeout(Duration::from_secs(10)).await;
    say(&format!("released {}", report.completed));
}

/// A worker process the test started, and the lines it said so far.
struct Worker {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    said: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl Worker {
    /// Starts worker `name` on `orders`, and waits until it is ready.
    fn start(name: &'static str, orders: &Orders) -> Self {
        let test_binary = std::env::current_exe().expect("this test binary");
        let mut child = Command::new(test_binary)
            .args(["--exact", "backend::tests::processes::worker_process"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(ORDERS, serde_json::to_string(orders).expect("JSON"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start worker {name}: {error}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let said = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let hearing = Arc::clone(&said);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // Anywhere in the line: libtest may have begun it with the
                // test's name.
                if let Some((_, line)) = line.split_once(SAYS) {
                    let (lines, told) = &*hearing;
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line.to_owned());
                    told.notify_all();
                }
            }
        });
        let worker = Self {
            name,
            child,
            stdin,
            said,
        };
        worker.wait_for("to be ready", |said| {
            said.iter().any(|line| line == "ready")
        });
        worker
    }

    /// Waits until what the worker said satisfies `done`, failing after
    /// 30 s, or at once if the worker exits first.
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let (lines, told) = &*self.said;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut said = lines.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&said) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "waited more than 30 s for worker {} {what}; it said {} lines, the last {:?}",
                self.name,
                said.len(),
                said.last()
            );
            let slice = left.min(Duration::from_millis(100));
            said = told
                .wait_timeout(said, slice)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn said(&self) -> Vec<String> {
        self.said
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The jobs it said it `started` or `ran` (`what`), as (n, attempt).
    fn jobs(&self, what: &str) -> Vec<(u32, u32)> {
        jobs_in(&self.said(), what)
    }

    /// SIGKILL: no release, no destructor, its leases simply stop being
    /// renewed.
    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Closes its stdin, which releases its queue, and waits (30 s at
    /// most) for it to exit, successfully.
    fn release(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("its status") {
                assert!(
                    status.success(),
                    "worker {} exited with {status}",
                    self.name
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited more than 30 s for worker {} to release and exit",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A test that failed leaves no worker behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn jobs_in(said: &[String], what: &str) -> Vec<(u32, u32)> {
    let parse = |line: &str| {
        let mut words = line.split(' ');
        (words.next() == Some(what)).then_some(())?;
        let n = words.next()?.parse().ok()?;
        Some((n, words.next()?.parse().ok()?))
    };
    said.iter().filter_map(|line| parse(line)).collect()
}

/// The test's own connection, and an add-only queue (it runs no job) on
/// the server, migrated.
fn adder(server: &TempServer, runtime: &Runtime) -> (Client, Etiquette<Postgres>) {
    runtime.block_on(async {
        let builder = Postgres::builder(&server.url("postgres"), kinds()).expect("a valid url");
        let postgres = connected(builder.work(false)).await;
        let queue = Etiquette::builder().build_on(postgres).expect("build");
        let client = server
            .connect("postgres")
            .await
            .expect("the test's connection");
        (client, queue)
    })
}

/// Adds jobs `0..count` in one transaction (one commit), each with three
/// attempts.
fn add_marks(runtime: &Runtime, (client, queue): &mut (Client, Etiquette<Postgres>), count: u32) {
    runtime.block_on(async {
        let transaction = client.transaction().await.expect("begin");
        let decorum = queue.decorum();
        let retry = RetryPolicy::exponential(3, Duration::from_millis(10));
        for n in 0..count {
            let job = decorum.job(Mark { n }).retry(retry.clone());
            Postgres::add_in(&transaction, job).await.expect("added");
        }
        transaction.commit().await.expect("commit");
    });
}

/// Waits until `count` jobs succeeded, failing after `within` with the
/// table's states.
fn until_succeeded(runtime: &Runtime, client: &Client, count: i64, within: Duration) {
    runtime.block_on(async {
        let states = "SELECT state::text, count(*) FROM etiquette.jobs GROUP BY 1 ORDER BY 1";
        let deadline = Instant::now() + within;
        loop {
            let rows = client.query(states, &[]).await.expect("the states");
            let states: BTreeMap<String, i64> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
            if states.get("succeeded") == Some(&count) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited more than {within:?} for {count} jobs to succeed; the table holds {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

fn orders(server: &TempServer, limit: usize) -> Orders {
    Orders {
        url: server.url("postgres"),
        limit,
        bound: None,
        lease_ms: 5_000,
        stall: false,
        gauge: None,
    }
}

#[test]
fn a_worker_killed_mid_job_loses_nothing_and_reruns_only_what_it_ran() {
    let server = server();
    let runtime = Runtime::new().expect("a runtime");
    let mut adder = adder(&server, &runtime);
    add_marks(&runtime, &mut adder, 20);
    let lease_ms = 1_000;
    let mut doomed = Worker::start(
        "A",
        &Orders {
            stall: true,
            lease_ms,
            ..orders(&server, 3)
        },
    );
    doomed.wait_for("to start 3 jobs", |said| {
        jobs_in(said, "started").len() == 3
    });
    doomed.kill();
    let killed_mid_job: Vec<u32> = doomed.jobs("started").iter().map(|&(n, _)| n).collect();
    let mut survivor = Worker::start(
        "B",
        &Orders {
            lease_ms,
            ..orders(&server, 4)
        },
    );
    until_succeeded(&runtime, &adder.0, 20, Duration::from_secs(30));
    survivor.release();
    let mut ran = survivor.jobs("ran");
    ran.sort_unstable();
    let expected: Vec<(u32, u32)> = (0..20)
        .map(|n| (n, if killed_mid_job.contains(&n) { 2 } else { 1 }))
        .collect();
    assert_eq!(
        ran, expected,
        "every job ran once in B; again (attempt 2) only those A was running: {killed_mid_job:?}"
    );
}

#[test]
fn three_worker_processes_share_10_000_jobs_and_run_each_once() {
    let server = server();
    let runtime = Runtime::new().expect("a runtime");
    let mut adder = adder(&server, &runtime);
    let mut workers = ["A", "B", "C"].map(|name| Worker::start(name, &orders(&server, 16)));
    add_marks(&runtime, &mut adder, 10_000);
    until_succeeded(&runtime, &adder.0, 10_000, Duration::from_secs(120));
    let mut started = Vec::new();
    let mut ran = Vec::new();
    for worker in &mut workers {
        worker.release();
        let its = worker.jobs("ran");
        assert!(!its.is_empty(), "worker {} ran no job", worker.name);
        ran.extend(its);
        started.extend(worker.jobs("started"));
    }
    started.sort_unstable();
    ran.sort_unstable();
    let here = adder.1.stats();
    assert_eq!(
        here.completed + here.failed,
        0,
        "the add-only queue ran none"
    );
    let each_once: Vec<(u32, u32)> = (0..10_000).map(|n| (n, 1)).collect();
    assert!(
        started == each_once,
        "every job started once, in one process"
    );
    assert!(ran == each_once, "every job ran once, in one process");
}

#[test]
fn three_processes_allowing_8_each_run_at_most_5_at_once_across_them() {
    let server = server();
    let runtime = Runtime::new().expect("a runtime");
    let mut adder = adder(&server, &runtime);
    runtime.block_on(async {
        let gauge = "CREATE TABLE gauge (now int NOT NULL, peak int NOT NULL);
                     INSERT INTO gauge VALUES (0, 0);";
        adder.0.batch_execute(gauge).await.expect("the gauge table");
    });
    let bounded = Orders {
        bound: Some(5),
        gauge: Some(5),
        ..orders(&server, 8)
    };
    let mut workers = ["A", "B", "C"].map(|name| Worker::start(name, &bounded));
    add_marks(&runtime, &mut adder, 60);
    until_succeeded(&runtime, &adder.0, 60, Duration::from_secs(60));
    for worker in &mut workers {
        worker.release();
    }
    let peak = runtime.block_on(async {
        let row = adder.0.query_one("SELECT peak FROM gauge", &[]).await;
        row.expect("the peak").get::<_, i32>(0)
    });
    assert_eq!(
        peak, 5,
        "the most jobs running at once across the three processes"
    );
}
