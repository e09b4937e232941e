//! A throwaway PostgreSQL server for tests: started in a temporary folder
//! on a free port of 127.0.0.1, removed when dropped.
//!
//! It needs the server's binaries (`initdb`, `pg_ctl`; Debian:
//! `apt-get install postgresql`). A missing binary is an error naming the
//! install command, never a skipped test. Run as root, it runs the server
//! as the `postgres` user (`initdb` refuses root).

use std::fmt;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio_postgres::Client;

/// Where Debian and Ubuntu put the server's binaries, newest first; `PG_BIN`
/// overrides.
const BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
];

/// A running throwaway server; stopped and deleted on drop.
pub struct TempServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Whether `pg_ctl start` succeeded: only then is there a server to stop.
    running: bool,
}

/// Why a [`TempServer`] could not start.
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl TempServer {
    /// Starts a server, about a second.
    ///
    /// # Errors
    /// The binaries are missing (the message says how to install them), or
    /// `initdb` or `pg_ctl` failed (the message holds their output).
    pub fn start() -> Result<Self, StartError> {
        let bin = find_bin()?;
        let dir = TempDir::new()?;
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let port = free_port()?;
        let mut server = Self {
            dir,
            bin,
            port,
            as_postgres,
            running: false,
        };
        let data = server.data();
        // No fsync while building the cluster: the tests' data is throwaway,
        // but the server itself runs with fsync on, as in production.
        server.pg(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        )?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            server.dir.path().display()
        );
        let log = server.dir.path().join("log").display().to_string();
        if let Err(error) = server.pg(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        ) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(StartError(format!("{error}\nserver log:\n{log}")));
        }
        server.running = true;
        Ok(server)
    }

    /// Restarts the server (a fast shutdown, then a start on the same port):
    /// every connection is cut, as by a database restart in production.
    ///
    /// # Errors
    /// `pg_ctl` failed (the message holds its output).
    pub fn restart(&self) -> Result<(), StartError> {
        let data = self.data();
        // With its log file, as at start: otherwise the new server would
        // write to our pipes, and waiting for their end would never end.
        let log = self.dir.path().join("log").display().to_string();
        self.pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "restart"],
        )
        .map(drop)
    }

    /// The port it listens on, on 127.0.0.1.
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for database `database` (`postgres` exists).
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Connects to database `database`, driving the connection on a tokio
    /// task.
    ///
    /// # Errors
    /// As `tokio_postgres::connect`.
    pub async fn connect(&self, database: &str) -> Result<Client, tokio_postgres::Error> {
        crate::connection::connect(&self.url(database).parse()?)
            .await
            .map(crate::connection::Session::into_client)
    }

    /// Creates a fresh database and connects to it: one per test keeps
    /// tests sharing a server apart.
    ///
    /// # Errors
    /// As `tokio_postgres::connect` and `CREATE DATABASE`.
    pub async fn fresh_database(&self, name: &str) -> Result<Client, tokio_postgres::Error> {
        let admin = self.connect("postgres").await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        self.connect(name).await
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<Output, StartError> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        run(command.args(args))
    }
}

impl Drop for TempServer {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.data();
        // Immediate: the data is thrown away with the folder.
        let _ = self.pg("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

impl fmt::Debug for TempServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TempServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// A folder of its own under the system's temporary folder, removed on
/// drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, StartError> {
        // Unique within the process by the counter, across processes by the
        // pid and the clock (a pid may be reused).
        static MADE: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "etiquette-pg-{}-{}-{:x}",
            std::process::id(),
            MADE.fetch_add(1, Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos())
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)
            .map_err(|error| StartError(format!("cannot make {}: {error}", path.display())))?;
        Ok(Self(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find_bin() -> Result<PathBuf, StartError> {
    let candidates = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .chain(BIN_DIRS.iter().map(PathBuf::from));
    for dir in candidates {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    Err(StartError(format!(
        "PostgreSQL's server binaries (initdb, pg_ctl) were not found in PG_BIN or {BIN_DIRS:?}: \
         install them with `apt-get install postgresql` (Debian, Ubuntu), or set PG_BIN"
    )))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// A port nobody listens on now. Another process may take it before the
/// server does; the server then fails to start, loudly.
fn free_port() -> Result<u16, StartError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| StartError(format!("cannot find a free port: {error}")))
}

fn run(command: &mut Command) -> Result<Output, StartError> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|error| StartError(format!("cannot run {shown}: {error}")))?;
    if !output.status.success() {
        return Err(StartError(format!(
            "{shown} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(output)
}
