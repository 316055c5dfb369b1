//! [`RedisServer`]: one private `redis-server` process, its port, data directory and log.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::logfile::{self, LOG_TAIL_LINES};
use crate::probe::{self, Readiness};
use crate::{free_port, REDIS_CLI_BIN, REDIS_SERVER_BIN};

/// How long a server may take to answer `PING` (including loading its data) after launch.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a server may take to exit after `SHUTDOWN`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between readiness probes and exit checks.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Fresh ports tried by [`RedisServer::start`] when another process takes the port first.
const FRESH_PORT_ATTEMPTS: u32 = 5;

/// Launches tried by [`RedisServer::start_again`] while its fixed port is still in use.
const SAME_PORT_ATTEMPTS: u32 = 10;

/// Pause between [`RedisServer::start_again`] attempts on a busy port.
const SAME_PORT_RETRY_DELAY: Duration = Duration::from_millis(200);

/// File name of the server log inside the data directory.
pub(crate) const LOG_FILE: &str = "redis.log";

/// What the log says once the server listens and has loaded its data (Redis 2.x to 7.x).
pub(crate) const READY_LOG_LINE: &str = "Ready to accept connections";

/// What the log says when the port was taken between [`free_port`] and the server's `bind`.
const ADDRESS_IN_USE: &str = "Address already in use";

/// A `redis-server` process started for a test, killed when dropped.
///
/// The server listens on 127.0.0.1 on a free port, keeps its data and its log (`redis.log`, which
/// also receives the process's stdout and stderr) in its own temporary directory, and persists
/// nothing unless [`appendonly`](crate::RedisServerBuilder::appendonly) is set. It can be crashed
/// ([`stop`]), shut down gracefully ([`shutdown`]) and started again on the same port and
/// directory ([`start_again`], [`restart`]).
///
/// Every method panics on failure with a message that includes the end of the server log: this is
/// test code, and a panic with the log is the most useful failure.
///
/// [`stop`]: RedisServer::stop
/// [`shutdown`]: RedisServer::shutdown
/// [`start_again`]: RedisServer::start_again
/// [`restart`]: RedisServer::restart
pub struct RedisServer {
    /// `None` while stopped.
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    /// Everything after `--port P` on the command line; the same for every launch.
    args: Vec<String>,
    /// Set once a panic message carried the log, so `Drop` does not print it a second time.
    log_reported: bool,
    /// Declared last: the process is killed in `drop` before the directory is removed.
    dir: TempDir,
}

impl RedisServer {
    /// The TCP port on 127.0.0.1; it stays the same across [`RedisServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection URL: `redis://127.0.0.1:PORT`, or `redis://:PASSWORD@127.0.0.1:PORT` when a
    /// password is set (percent-encoded).
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!(
                "redis://:{}@127.0.0.1:{}",
                percent_encode(password),
                self.port
            ),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The server's own data directory (AOF, RDB and `redis.log`), removed when dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id while running, `None` while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Crashes the server: sends SIGKILL and waits for the process to exit.
    ///
    /// Nothing is flushed, as in a power cut or an OOM kill. The port and data directory are kept
    /// for [`RedisServer::start_again`]. Does nothing when already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Both fail only when the process is already gone, which is the goal anyway.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Shuts the server down gracefully with `SHUTDOWN` and waits for it to exit.
    ///
    /// Unlike [`RedisServer::stop`], the server flushes its append-only file first. The port and
    /// data directory are kept for [`RedisServer::start_again`]. Does nothing when already stopped.
    ///
    /// # Panics
    ///
    /// When the server refuses `SHUTDOWN` or does not exit within 10 s.
    pub fn shutdown(&mut self) {
        if !self.is_running() {
            return;
        }
        if let Err(e) = probe::request_shutdown(self.port, self.password.as_deref()) {
            self.fail(&format!("could not be shut down: {e}"));
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while self.is_running() {
            if Instant::now() >= deadline {
                self.stop();
                self.fail(&format!(
                    "did not exit within {SHUTDOWN_TIMEOUT:?} after SHUTDOWN (killed it)"
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Starts the server again on the same port, data directory and configuration.
    ///
    /// Call after [`RedisServer::stop`] or [`RedisServer::shutdown`]. With `appendonly` the data is
    /// reloaded; this waits until loading has finished (the log says so and `PING` answers
    /// `+PONG`, not `-LOADING`).
    /// Retries for about two seconds while the port is still in use.
    ///
    /// # Panics
    ///
    /// When the server is still running, or cannot be started on its port.
    pub fn start_again(&mut self) {
        if self.is_running() {
            panic!(
                "redis-server on port {} is still running; call stop() or shutdown() before start_again()",
                self.port
            );
        }
        for attempt in 1..=SAME_PORT_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                Err(LaunchError::PortInUse) if attempt < SAME_PORT_ATTEMPTS => {
                    thread::sleep(SAME_PORT_RETRY_DELAY);
                }
                Err(e) => self.fail(&format!("failed to start again: {e}")),
            }
        }
    }

    /// Crashes the server ([`RedisServer::stop`]) and starts it again on the same port and data
    /// directory ([`RedisServer::start_again`]).
    ///
    /// # Panics
    ///
    /// When the server cannot be started again.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Reports whether the process is running; notices a server that exited by itself.
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) => {
                self.child = None;
                false
            }
            // The process cannot be inspected; assume it runs so Drop still kills it.
            Err(_) => true,
        }
    }

    /// Runs `redis-cli` against this server and returns its stdout, trimmed.
    ///
    /// Authenticates when a password is set. Output is redis-cli's non-interactive format: a nil
    /// reply is an empty string, array elements are separate lines, and an error reply comes back
    /// as its text (`ERR ...`) because redis-cli still exits successfully.
    ///
    /// # Panics
    ///
    /// When `redis-cli` cannot be run or exits with failure (e.g. the server is stopped); the
    /// message includes redis-cli's stderr.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new(REDIS_CLI_BIN);
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null());
        // Through the environment rather than `-a`, which makes redis-cli print a warning.
        match &self.password {
            Some(password) => command.env("REDISCLI_AUTH", password),
            None => command.env_remove("REDISCLI_AUTH"),
        };
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {REDIS_CLI_BIN}: {e}"));
        if !output.status.success() {
            panic!(
                "{REDIS_CLI_BIN} -p {} {args:?} failed ({}):\n{}{}",
                self.port,
                output.status,
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout),
            );
        }
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The content of the server log: every launch's output, oldest first.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    fn log_tail(&self) -> String {
        logfile::tail(&self.log())
    }

    /// Starts a server on a free port with its data in `dir` and `args` after `--port P`.
    ///
    /// Retries on fresh ports while another process takes the port first.
    pub(crate) fn start_in(dir: TempDir, args: Vec<String>, password: Option<String>) -> Self {
        let mut server = RedisServer {
            child: None,
            port: 0,
            password,
            args,
            log_reported: false,
            dir,
        };
        for attempt in 1..=FRESH_PORT_ATTEMPTS {
            server.port = free_port();
            match server.launch() {
                Ok(()) => break,
                Err(LaunchError::PortInUse) if attempt < FRESH_PORT_ATTEMPTS => {}
                Err(e) => server.fail(&format!("failed to start: {e}")),
            }
        }
        server
    }

    /// Spawns the process on `self.port` and waits until it is ready.
    fn launch(&mut self) -> Result<(), LaunchError> {
        let log_path = self.log_path();
        let (log, launch_offset) = logfile::open_for_launch(&log_path, REDIS_SERVER_BIN, self.port);
        let stdout = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot duplicate the log file handle: {e}"));

        let child = Command::new(REDIS_SERVER_BIN)
            .args(["--port", &self.port.to_string()])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {REDIS_SERVER_BIN} (is it installed? see redis_available()): {e}"
                )
            });
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(if self.launch_log(launch_offset).contains(ADDRESS_IN_USE) {
                    LaunchError::PortInUse
                } else {
                    LaunchError::Exited(status)
                });
            }
            // Only our own log can say that *our* process bound the port (and finished loading
            // its data); until then a connection could reach whoever else holds the port.
            let reason = if self.launch_log(launch_offset).contains(READY_LOG_LINE) {
                match probe::probe(self.port, self.password.as_deref()) {
                    Readiness::Ready => return Ok(()),
                    Readiness::NotYet(reason) => reason,
                }
            } else {
                format!("the log does not say {READY_LOG_LINE:?} yet")
            };
            if Instant::now() >= deadline {
                self.stop();
                return Err(LaunchError::NotReady(reason));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// What the log holds from byte `offset` on: the output of one launch.
    fn launch_log(&self, offset: u64) -> String {
        logfile::read_from(&self.log_path(), offset)
    }

    /// The exit status if the process has exited (and is then forgotten), else `None`.
    fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Panics with `what` and the end of the server log.
    fn fail(&mut self, what: &str) -> ! {
        self.log_reported = true;
        panic!(
            "{REDIS_SERVER_BIN} on port {} {what}\n--- last {LOG_TAIL_LINES} lines of {} ---\n{}\n--- end of log ---",
            self.port,
            self.log_path().display(),
            self.log_tail(),
        );
    }
}

impl Drop for RedisServer {
    /// Kills the process (SIGKILL) and waits for it; when the thread is panicking, prints the end
    /// of the server log to stderr so the failing test shows it. The data directory is removed.
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() && !self.log_reported {
            eprintln!(
                "--- {REDIS_SERVER_BIN} on port {}: last {LOG_TAIL_LINES} lines of {} ---\n{}\n--- end of log ---",
                self.port,
                self.log_path().display(),
                self.log_tail(),
            );
        }
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why one launch did not produce a ready server.
#[derive(Debug)]
enum LaunchError {
    /// The port was taken by another process; retrying may help.
    PortInUse,
    /// The process exited before it was ready.
    Exited(ExitStatus),
    /// The process did not become ready in time (it was killed); the last probe result.
    NotReady(String),
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PortInUse => write!(f, "the port stayed in use ({ADDRESS_IN_USE})"),
            Self::Exited(status) => write!(f, "exited before it was ready ({status})"),
            Self::NotReady(reason) => write!(
                f,
                "was not ready within {READY_TIMEOUT:?} (last check: {reason})"
            ),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for the URL's password.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("p@ss word/:"), "p%40ss%20word%2F%3A");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
