//! [`RedisServerBuilder`]: the configuration of a [`RedisServer`] and its `redis-server` command line.

use std::path::Path;

use crate::server::{RedisServer, LOG_FILE, READY_LOG_LINE};

/// Redis's default fsync policy, passed explicitly so the command line says what runs.
const DEFAULT_APPENDFSYNC: &str = "everysec";

/// Directives the harness sets itself; overriding them would break port, log or lifecycle tracking.
const RESERVED_DIRECTIVES: &[&str] = &["port", "bind", "dir", "logfile", "daemonize"];

/// Log levels that hide [`READY_LOG_LINE`], which the readiness check needs.
const QUIET_LOG_LEVELS: &[&str] = &["warning", "nothing"];

/// Configures a [`RedisServer`] before starting it; from [`RedisServer::builder`].
///
/// Defaults: no persistence (`--save ""`, `--appendonly no`), `--appendfsync everysec`, no
/// password.
#[derive(Debug, Clone, Default)]
pub struct RedisServerBuilder {
    appendonly: bool,
    appendfsync: Option<String>,
    password: Option<String>,
    extra_args: Vec<String>,
}

impl RedisServerBuilder {
    /// Turns the append-only file on or off (`--appendonly yes|no`).
    pub fn appendonly(mut self, enabled: bool) -> Self {
        self.appendonly = enabled;
        self
    }

    /// Sets the fsync policy of the append-only file (`--appendfsync`).
    ///
    /// # Panics
    ///
    /// When `policy` is not `"always"`, `"everysec"` or `"no"`.
    pub fn appendfsync(mut self, policy: &str) -> Self {
        assert!(
            matches!(policy, "always" | "everysec" | "no"),
            "appendfsync must be \"always\", \"everysec\" or \"no\", got {policy:?}"
        );
        self.appendfsync = Some(policy.to_owned());
        self
    }

    /// Requires clients to authenticate with `password` (`--requirepass`).
    ///
    /// The harness then authenticates its own checks and [`RedisServer::cli`], and
    /// [`RedisServer::url`] carries the password.
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Adds any configuration directive, e.g. `.arg("--maxmemory", "10mb")`.
    ///
    /// The leading `--` is optional. `value` is passed as one argument; later directives override
    /// earlier ones and the defaults. `--requirepass` is the same as
    /// [`RedisServerBuilder::requirepass`].
    ///
    /// # Panics
    ///
    /// For directives the harness owns (`port`, `bind`, `dir`, `logfile`, `daemonize`) and for
    /// `--loglevel warning|nothing`, which would hide the log line the readiness check waits for.
    pub fn arg(mut self, name: &str, value: impl Into<String>) -> Self {
        let directive = name.trim_start_matches('-');
        assert!(
            !RESERVED_DIRECTIVES.contains(&directive.to_ascii_lowercase().as_str()),
            "--{directive} is set by the test harness and cannot be overridden"
        );
        let value = value.into();
        assert!(
            !(directive.eq_ignore_ascii_case("loglevel")
                && QUIET_LOG_LEVELS.contains(&value.to_ascii_lowercase().as_str())),
            "--loglevel {value} would hide {READY_LOG_LINE:?}, which the harness waits for"
        );
        if directive.eq_ignore_ascii_case("requirepass") {
            self.password = Some(value.clone());
        }
        self.extra_args.push(format!("--{directive}"));
        self.extra_args.push(value);
        self
    }

    /// Starts the server on a free port and waits until it is ready.
    ///
    /// Ready means its own log says "Ready to accept connections" (so it is our process on the
    /// port and its data is loaded) and it answers `PING` with `+PONG`.
    ///
    /// If another process takes the port before the server binds it, retries on a new port.
    ///
    /// # Panics
    ///
    /// When the server cannot be started or is not ready within 10 s; the message includes the
    /// server log.
    pub fn start(self) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("ragchat-redis-")
            .tempdir()
            .unwrap_or_else(|e| {
                panic!("cannot create a temporary directory for redis-server: {e}")
            });
        let args = self.command_line(dir.path());
        RedisServer::start_in(dir, args, self.password)
    }

    /// Like [`RedisServerBuilder::start`], but returns `None` (after one line on stderr) when
    /// `redis-server` is not installed, so a test can skip itself (through [`crate::skip`],
    /// which records the skip for the summary of `scripts/test`).
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing and the `CI` environment variable is set, or when the
    /// server fails to start.
    pub fn start_or_skip(self) -> Option<RedisServer> {
        if crate::redis_available() {
            return Some(self.start());
        }
        crate::skip(crate::SKIP_NO_REDIS);
        None
    }

    fn command_line(&self, dir: &Path) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            dir.join(LOG_FILE).display().to_string(),
            "--daemonize".into(),
            "no".into(),
            "--protected-mode".into(),
            "no".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            if self.appendonly { "yes" } else { "no" }.into(),
            "--appendfsync".into(),
            self.appendfsync
                .as_deref()
                .unwrap_or(DEFAULT_APPENDFSYNC)
                .into(),
            "--appenddirname".into(),
            "appendonlydir".into(),
        ];
        if let Some(password) = &self.password {
            args.push("--requirepass".into());
            args.push(password.clone());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

// The constructors live beside the builder they return, so that the server module does not
// import the builder back.
impl RedisServer {
    /// Starts a server with the default configuration: no persistence (`--save ""`,
    /// `--appendonly no`) and no password.
    ///
    /// # Panics
    ///
    /// When the server cannot be started or does not answer `PING` within 10 s; the message
    /// includes the server log.
    pub fn start() -> RedisServer {
        Self::builder().start()
    }

    /// Returns a builder for servers with persistence, a password or extra configuration.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_accepts_names_with_or_without_dashes() {
        let builder = RedisServerBuilder::default()
            .arg("maxmemory", "10mb")
            .arg("--maxmemory-policy", "noeviction");
        assert_eq!(
            builder.extra_args,
            ["--maxmemory", "10mb", "--maxmemory-policy", "noeviction"]
        );
    }

    #[test]
    fn arg_requirepass_sets_the_password() {
        let builder = RedisServerBuilder::default().arg("--requirepass", "secret");
        assert_eq!(builder.password.as_deref(), Some("secret"));
    }

    #[test]
    #[should_panic(expected = "set by the test harness")]
    fn arg_rejects_the_port() {
        let _ = RedisServerBuilder::default().arg("--port", "6379");
    }

    #[test]
    #[should_panic(expected = "would hide")]
    fn arg_rejects_a_loglevel_that_hides_readiness() {
        let _ = RedisServerBuilder::default().arg("loglevel", "warning");
    }

    #[test]
    #[should_panic(expected = "appendfsync must be")]
    fn appendfsync_rejects_unknown_policies() {
        let _ = RedisServerBuilder::default().appendfsync("sometimes");
    }
}
