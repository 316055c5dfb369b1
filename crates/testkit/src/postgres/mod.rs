//! [`PostgresServer`]: one private PostgreSQL server, its port, data directory and log.
//!
//! PostgreSQL refuses to run as root, and CI runs as root. When the test process is root,
//! the server runs as an unprivileged account (`postgres`, or `$RAGCHAT_PG_USER`): the
//! temporary directory is handed to that account and the server process is started with its
//! uid and gid (`std::os::unix::process::CommandExt::uid`, so no `runuser` stands between
//! the test and the process it must be able to kill). As any other user, the server runs as
//! that user.
//!
//! The binaries are looked up in `$RAGCHAT_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `PATH`. `initdb` runs once per
//! machine into a template cluster in the temporary directory
//! (`ragchat-testkit-pg-template-<uid>-<hash of the bin dir>`), which every server copies:
//! a server starts in about a quarter of a second, and test processes share one template
//! instead of leaving one behind each.

use std::fmt;
use std::fs;
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::free_port;
use crate::logfile;

mod setup;

use setup::{chown_tree, copy_dir, find_bin, setup, Setup};

/// How long a server may take to accept connections after launch (crash recovery included).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a server may take to exit after a shutdown signal.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between readiness probes and exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Fresh ports tried when another process takes the port first.
const FRESH_PORT_ATTEMPTS: u32 = 5;

/// Launches tried by [`PostgresServer::start_again`] while its port is still held.
const SAME_PORT_ATTEMPTS: u32 = 10;

/// The superuser the template cluster is created with; tests connect as it.
pub const POSTGRES_SUPERUSER: &str = "postgres";

/// What the log says once the server accepts connections.
const READY_LOG_LINE: &str = "database system is ready to accept connections";

/// What the log says when the port was taken between [`free_port`] and the server's bind.
const ADDRESS_IN_USE: &str = "Address already in use";

/// Reports whether PostgreSQL's server binaries (`initdb`, `postgres`) can be found.
pub fn postgres_available() -> bool {
    find_bin().is_some()
}

/// Starts a [`PostgresServer`] for a test, or skips the test when PostgreSQL is not installed.
///
/// Returns `None` after reporting the skip ([`crate::skip`]) when the binaries are
/// missing, so the test can `return` early.
///
/// # Panics
///
/// When the binaries are missing and the `CI` environment variable is set (CI must run these
/// tests), and when the server cannot be started.
pub fn postgres_or_skip() -> Option<PostgresServer> {
    if postgres_available() {
        return Some(PostgresServer::start());
    }
    crate::skip("postgresql not installed (initdb/postgres not found)");
    None
}

/// A PostgreSQL server started for a test, stopped when dropped.
///
/// It listens on 127.0.0.1 on a free port and on a Unix socket in its own temporary
/// directory, which also holds its data (`data/`) and its log (`postgres.log`). It trusts
/// local connections (no password) and runs with `fsync=off`: a test server, fast and
/// disposable. It can be crashed ([`stop`]: an immediate shutdown, as after a power cut the
/// server recovers from its WAL on the next start), shut down cleanly ([`shutdown`]) and
/// started again on the same port and data ([`start_again`], [`restart`]).
///
/// Every method panics with the end of the server log when something fails.
///
/// [`stop`]: PostgresServer::stop
/// [`shutdown`]: PostgresServer::shutdown
/// [`start_again`]: PostgresServer::start_again
/// [`restart`]: PostgresServer::restart
pub struct PostgresServer {
    child: Option<Child>,
    port: u16,
    setup: Setup,
    log_reported: bool,
    /// Declared last: the process is stopped in `drop` before the directory is removed.
    dir: TempDir,
}

impl PostgresServer {
    /// Starts a server on a free port with a fresh copy of the template cluster.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed, or the server does not accept connections in 30 s.
    pub fn start() -> PostgresServer {
        let setup = setup().unwrap_or_else(|e| panic!("cannot prepare PostgreSQL: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("ragchat-pg-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        copy_dir(&setup.template, &dir.path().join("data"))
            .unwrap_or_else(|e| panic!("cannot copy the template cluster: {e}"));
        if let Some((uid, gid)) = setup.run_as {
            chown_tree(dir.path(), uid, gid)
                .unwrap_or_else(|e| panic!("cannot hand the data directory over: {e}"));
        }
        let mut server = PostgresServer {
            child: None,
            port: 0,
            setup,
            log_reported: false,
            dir,
        };
        for attempt in 1..=FRESH_PORT_ATTEMPTS {
            server.port = free_port();
            match server.launch() {
                Ok(()) => return server,
                Err(LaunchError::PortInUse) if attempt < FRESH_PORT_ATTEMPTS => {}
                Err(e) => server.fail(&format!("failed to start: {e}")),
            }
        }
        server.fail("no free port could be bound")
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for the `postgres` database as the superuser.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// A connection URL for `database` as the superuser.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{POSTGRES_SUPERUSER}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Creates a database and returns its URL.
    ///
    /// # Panics
    ///
    /// When the database cannot be created (for example because it exists).
    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url_for(name)
    }

    /// The directory holding the data and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The postmaster's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs one SQL statement through `psql` and returns its unaligned, tuples-only output.
    ///
    /// # Panics
    ///
    /// When `psql` cannot run or the statement fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let psql = self.setup.bin.join("psql");
        let psql = if psql.is_file() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let output = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", POSTGRES_SUPERUSER, "-d", database, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql.display()));
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// Crashes the server: an immediate shutdown (SIGQUIT), which stops every backend at once
    /// without a checkpoint, as a power cut would; the next start recovers from the WAL.
    pub fn stop(&mut self) {
        self.signal_and_wait("QUIT");
    }

    /// Shuts the server down cleanly (SIGINT: a fast shutdown with a checkpoint).
    pub fn shutdown(&mut self) {
        self.signal_and_wait("INT");
    }

    /// Starts a stopped server again on the same port and data directory.
    ///
    /// # Panics
    ///
    /// When the server is running, or does not come back.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again on a running server");
        for attempt in 1..=SAME_PORT_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                Err(LaunchError::PortInUse) if attempt < SAME_PORT_ATTEMPTS => {
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => self.fail(&format!("failed to start again: {e}")),
            }
        }
    }

    /// Crashes the server ([`stop`](Self::stop)) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Whether the server process is alive.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none() && self.child.is_some()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn log_tail(&self) -> String {
        logfile::tail(&self.log())
    }

    fn launch(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let (log, offset) = logfile::open_for_launch(&log_path, "postgres", self.port);
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the log file handle: {e}"));
        let mut command = Command::new(self.setup.bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .args([
                "-c",
                "logging_collector=off",
                "-c",
                "log_min_messages=warning",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        if let Some((uid, gid)) = self.setup.run_as {
            command.uid(uid).gid(gid);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.setup.bin.display()));
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status() {
                self.child = None;
                return Err(if self.log_since(offset).contains(ADDRESS_IN_USE) {
                    LaunchError::PortInUse
                } else {
                    LaunchError::Exited(status)
                });
            }
            if self.log_since(offset).contains(READY_LOG_LINE)
                && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LaunchError::Timeout);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn log_since(&self, offset: u64) -> String {
        logfile::read_from(&self.log_path(), offset)
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends `signal` to the postmaster and waits until it and its backends are gone.
    fn signal_and_wait(&mut self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while self.exit_status().is_none() {
            if Instant::now() > deadline {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                break;
            }
            thread::sleep(POLL_INTERVAL);
        }
        self.child = None;
        // The postmaster removes its pid file last; a start before that would refuse.
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while pid_file.exists() && signal != "QUIT" && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn fail(&mut self, what: &str) -> ! {
        self.log_reported = true;
        panic!(
            "PostgreSQL on port {} {what}\n--- end of {} ---\n{}",
            self.port,
            self.log_path().display(),
            self.log_tail()
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.signal_and_wait("QUIT");
        if thread::panicking() && !self.log_reported {
            eprintln!(
                "--- PostgreSQL on port {} (log {}) ---\n{}",
                self.port,
                self.log_path().display(),
                self.log_tail()
            );
        }
    }
}

impl fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresServer")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("pid", &self.pid())
            .finish()
    }
}

#[derive(Debug)]
enum LaunchError {
    PortInUse,
    Exited(ExitStatus),
    Timeout,
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::PortInUse => write!(f, "the port is in use"),
            LaunchError::Exited(status) => write!(f, "the server exited ({status})"),
            LaunchError::Timeout => write!(f, "no connection accepted in {READY_TIMEOUT:?}"),
        }
    }
}
