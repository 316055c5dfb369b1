//! Test harness for real `redis-server` and PostgreSQL processes.
//!
//! Tests in this workspace run against real services, never mocks of them. This crate starts a
//! private `redis-server` per test: it binds a free port on 127.0.0.1, gives the server its own
//! temporary data directory and log file, waits until its log says it is ready and it answers
//! `PING`, and kills it when the handle is dropped (even when the test panics, in which case the
//! tail of the server log is printed so the failure explains itself). A server can be crashed (`stop`), shut down gracefully
//! (`shutdown`) and started again on the same port and data directory (`start_again`, `restart`),
//! which is how persistence and reconnection behaviour is tested.
//!
//! Everything here is blocking and needs no async runtime; async tests can call it directly.
//! The harness never touches a Redis it did not start and never uses the default port 6379.
//!
//! Modules:
//! - `server`: [`RedisServer`]: process lifecycle (start, crash, shutdown, restart), `redis-cli`, log.
//! - `builder`: [`RedisServerBuilder`]: persistence, password and extra directives; the command line.
//! - `cluster`: [`RedisCluster`]: three (or more) masters joined into a real Redis Cluster.
//! - `proxy`: [`TcpProxy`]: a loopback relay a test can cut, to partition one client from a server.
//! - `probe`: the few raw RESP exchanges the harness needs (readiness `PING`, graceful `SHUTDOWN`).
//! - `postgres`: [`PostgresServer`]: a private PostgreSQL cluster (run as an unprivileged
//!   account when the tests run as root), crash, shutdown and restart.
//! - `skip`: [`skip`]: a test without its tool says so and is counted by `scripts/test`.
//! - `documents`: files for ingestion tests that the tests write themselves (minimal PDFs).
//!
//! ```no_run
//! use ragchat_testkit::{redis_or_skip, RedisServer};
//!
//! let Some(mut redis) = redis_or_skip() else { return };
//! redis.cli(&["SET", "greeting", "hello"]);
//! assert_eq!(redis.cli(&["GET", "greeting"]), "hello");
//!
//! let mut durable = RedisServer::builder().appendonly(true).appendfsync("always").start();
//! durable.cli(&["SET", "k", "v"]);
//! durable.restart(); // SIGKILL, then start on the same port and data dir
//! assert_eq!(durable.cli(&["GET", "k"]), "v");
//! ```

mod builder;
mod cluster;
pub mod documents;
mod logfile;
mod postgres;
mod probe;
mod prometheus;
mod proxy;
mod server;
mod skip;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

pub use builder::RedisServerBuilder;
pub use cluster::RedisCluster;
pub use postgres::{postgres_available, postgres_or_skip, PostgresServer, POSTGRES_SUPERUSER};
pub use prometheus::{assert_prometheus_text, metric};
pub use proxy::TcpProxy;
pub use server::RedisServer;
pub use skip::{skip, SKIP_LOG_ENV};

/// The reason a test gives when it skips for want of `redis-server`.
pub const SKIP_NO_REDIS: &str = "redis-server not installed";

/// The port of the Redis the developer may already run; the harness never hands it out.
const DEFAULT_REDIS_PORT: u16 = 6379;

/// Name of the server binary, looked up on `PATH`.
pub(crate) const REDIS_SERVER_BIN: &str = "redis-server";

/// Ports [`free_port`] has returned in this process.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Name of the command-line client, looked up on `PATH`.
pub(crate) const REDIS_CLI_BIN: &str = "redis-cli";

/// Reports whether `redis-server` is an executable file on `PATH`.
pub fn redis_available() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(REDIS_SERVER_BIN)))
}

/// Starts a default [`RedisServer`] for a test, or skips the test when Redis is not installed.
///
/// Returns `Some(server)` when `redis-server` is on `PATH`. Otherwise records the skip with
/// [`skip`] (`skipping: redis-server not installed` on stderr, a line in the skip log) and
/// returns `None`, so the test can `return` early. For other configurations use
/// [`RedisServerBuilder::start_or_skip`].
///
/// # Panics
///
/// When `redis-server` is missing and the `CI` environment variable is set: CI must run these
/// tests rather than silently skip them. Also panics when the server fails to start.
pub fn redis_or_skip() -> Option<RedisServer> {
    RedisServer::builder().start_or_skip()
}

/// Like [`redis_or_skip`], with the append-only file fsynced on every write
/// (`appendonly yes`, `appendfsync always`): a server that loses nothing it acknowledged
/// when killed, for crash and restart tests.
pub fn durable_redis_or_skip() -> Option<RedisServer> {
    RedisServer::builder()
        .appendonly(true)
        .appendfsync("always")
        .start_or_skip()
}

/// Returns a TCP port on 127.0.0.1 that was free a moment ago.
///
/// Binds `127.0.0.1:0`, reads the port the kernel chose and releases it. Another process can take
/// the port before it is used again; [`RedisServer::start`] handles that race by retrying on a new
/// port. Never returns 6379, and never returns the same port twice in one process: a server
/// that a test stopped keeps its port free for `start_again`, and no other test's server may
/// take it meanwhile (a client of the stopped server would silently talk to the wrong one).
///
/// # Panics
///
/// When no local port can be bound at all.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read the address of a bound socket: {e}"))
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if port != DEFAULT_REDIS_PORT && handed_out.insert(port) {
            return port;
        }
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_not_the_default() {
        let port = free_port();
        assert_ne!(port, DEFAULT_REDIS_PORT);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port should still be free");
    }

    #[test]
    fn free_port_never_repeats_in_a_process() {
        let ports: std::collections::HashSet<u16> = (0..200).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 200);
    }
}
