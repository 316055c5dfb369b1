//! Options every command shares (store, TTL, data dir, limits), resolved once into a
//! typed `MemorySettings`. Precedence: flags > `RAGCHAT_*` environment > defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use ragchat_memory::manager::{
    DEFAULT_CACHE_BYTES, DEFAULT_MAX_CONTENT_BYTES, DEFAULT_MAX_MESSAGES, DEFAULT_QUOTAS,
    DEFAULT_TTL_SECS,
};
use ragchat_memory::tier::{open_tiered, ArchiveMode, TierConfig, TieredStore};
use ragchat_memory::{
    open_store, parse_store_url, JournalConfig, ManagerConfig, Quotas, SessionManager,
    SessionStore, StoreOptions, StoreSpec, Ttl,
};

use crate::retention::{run_first_pass, Retention};

const MIB: u64 = 1024 * 1024;

/// The Redis stores with an archive this process opened, so that it can write their
/// archive before it exits ([`flush_archives`]).
static TIERED: std::sync::Mutex<Vec<Arc<TieredStore>>> = std::sync::Mutex::new(Vec::new());

/// Before the process exits: waits (a few seconds at most) until the archive holds
/// what this process appended. What is left stays in Redis without expiry, and a
/// running server's sweep archives it.
pub(crate) async fn flush_archives() {
    let stores: Vec<_> = TIERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain(..)
        .collect();
    for store in stores {
        let behind = store.flush(Duration::from_secs(5)).await;
        if behind > 0 {
            tracing::warn!(
                sessions = behind,
                "not archived yet: they stay in Redis without expiry until a server archives them"
            );
        }
    }
}

/// The Redis store with an archive this process opened last, if any.
pub(crate) fn opened_tiered() -> Option<Arc<TieredStore>> {
    TIERED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .last()
        .cloned()
}

/// Redis URL that `--redis` uses when given no URL and `RAGCHAT_REDIS_URL` is unset.
pub(crate) const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Lets `--redis URL` work beside `--redis=URL` and a bare `--redis`.
///
/// `--redis` takes an optional value, which on its own would swallow whatever follows
/// (`ragchat --redis sessions list`). So the value is only taken when the next word
/// looks like a Redis URL; everything else stays a separate argument.
pub(crate) fn normalize_redis_flag(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        if arg == "--redis" {
            let next_is_url = args
                .peek()
                .and_then(|a| a.to_str())
                .is_some_and(ragchat_memory::is_remote_url);
            if next_is_url {
                let url = args.next().unwrap_or_default();
                let mut joined = std::ffi::OsString::from("--redis=");
                joined.push(url);
                out.push(joined);
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// Options accepted before or after any subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Conversation store: memory://, sqlite://PATH, redis://[user:pass@]host:port[/db], rediss://..., redis+cluster://..., postgres://user:pass@host:port/db
    /// [env: RAGCHAT_STORE] [default: sqlite://<data dir>/sessions.db]
    #[arg(long, global = true, value_name = "URL")]
    pub store: Option<String>,

    /// Use Redis: shorthand for --store URL; URL defaults to $RAGCHAT_REDIS_URL, else redis://127.0.0.1:6379.
    #[arg(long, global = true, value_name = "URL", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    pub redis: Option<String>,

    /// A durable archive behind a Redis store: sqlite://PATH (one machine) or
    /// postgres://... (many). Conversations idle past --ttl leave Redis, stay here, and
    /// come back on their next use.
    #[arg(long, global = true, env = "RAGCHAT_ARCHIVE", value_name = "URL")]
    pub archive: Option<String>,

    /// Whether this process lives long (serve, chat): it then walks Redis for
    /// conversations other processes left unarchived. Set by `main`, not a flag.
    #[arg(skip)]
    pub long_running: bool,

    /// When the archive is written: write-behind (after the reply, in batches) or sync
    /// (before the reply: for a Redis without persistence; each turn waits for it).
    #[arg(
        long,
        global = true,
        env = "RAGCHAT_ARCHIVE_MODE",
        value_name = "MODE",
        default_value = "write-behind"
    )]
    pub archive_mode: String,

    /// Redis: look for conversations in the v1 layout on every call and merge what a v1
    /// server wrote (needed while a rolling deploy from v1 runs); off saves one EXISTS
    /// per call once no v1 server is left. Conversations Redis holds only in v1 are
    /// converted on first use either way.
    #[arg(long, global = true, env = "RAGCHAT_REDIS_V1_GUARD", value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub redis_v1_guard: bool,

    /// Redis: append a turn's messages with the lean script (a fraction of the full
    /// one's Redis CPU) when the conversation's position is known from an earlier reply;
    /// off, every append runs the full script. Both write the same data.
    #[arg(long, global = true, env = "RAGCHAT_REDIS_LEAN_APPEND", value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub redis_lean_append: bool,

    /// Seconds Redis keeps an idle conversation in RAM (sliding; 0 = no expiry). With
    /// an archive the conversation is loaded back on its next use; with Redis alone
    /// the TTL deletes it. SQLite and PostgreSQL ignore it.
    #[arg(long, global = true, env = "RAGCHAT_TTL", value_name = "SECS", default_value_t = DEFAULT_TTL_SECS)]
    pub ttl: u64,

    /// How long an idle conversation is kept before it is deleted: 90d, 12h, 30m, 30s
    /// or plain seconds, measured from its last message; 0 = forever (the default).
    /// Checked whenever a command opens the store, and in the background by `serve`.
    #[arg(long, global = true, env = "RAGCHAT_RETENTION", value_name = "DURATION", default_value = "0", value_parser = Retention::parse)]
    pub retention: Retention,

    /// Where ragchat keeps its files (embedded store, indexes).
    /// [default: the platform data directory, e.g. ~/.local/share/ragchat]
    #[arg(long, global = true, env = "RAGCHAT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Messages kept per conversation; older ones are trimmed (0 = unbounded).
    #[arg(long, global = true, env = "RAGCHAT_MAX_MESSAGES", value_name = "N", default_value_t = DEFAULT_MAX_MESSAGES)]
    pub max_messages: u64,

    /// Largest accepted message, in bytes.
    #[arg(long, global = true, env = "RAGCHAT_MAX_MESSAGE_BYTES", value_name = "BYTES", default_value_t = DEFAULT_MAX_CONTENT_BYTES)]
    pub max_message_bytes: usize,

    /// RAM cache budget for recent conversations, in MiB (0 disables it).
    #[arg(long, global = true, env = "RAGCHAT_CACHE_MB", value_name = "MIB", default_value_t = DEFAULT_CACHE_BYTES / (1024 * 1024))]
    pub cache_mb: u64,

    /// Timeout for connecting to and each command on a network store, in ms; past it
    /// the store counts as down and appends go to the local journal.
    #[arg(
        long,
        global = true,
        env = "RAGCHAT_STORE_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 250
    )]
    pub store_timeout_ms: u64,

    /// Largest size of the local journal that keeps appends while Redis is down, in MiB.
    #[arg(
        long,
        global = true,
        env = "RAGCHAT_JOURNAL_MAX_MB",
        value_name = "MIB",
        default_value_t = 1024
    )]
    pub journal_max_mb: u64,

    /// Largest stored size of one conversation, in MiB; a message that would take it
    /// past this is refused (exit 2, HTTP 413 `quota`). 0 = unbounded.
    #[arg(long, global = true, env = "RAGCHAT_MAX_SESSION_MB", value_name = "MIB", default_value_t = DEFAULT_QUOTAS.session_bytes / MIB)]
    pub max_session_mb: u64,

    /// Most conversations one user may keep; 0 = unbounded.
    #[arg(long, global = true, env = "RAGCHAT_MAX_SESSIONS_PER_USER", value_name = "N", default_value_t = DEFAULT_QUOTAS.user_sessions)]
    pub max_sessions_per_user: u64,

    /// Largest stored size of all of one user's conversations, in MiB; 0 = unbounded.
    #[arg(long, global = true, env = "RAGCHAT_MAX_USER_MB", value_name = "MIB", default_value_t = DEFAULT_QUOTAS.user_bytes / MIB)]
    pub max_user_mb: u64,
}

impl GlobalArgs {
    /// The data directory: `--data-dir`, `RAGCHAT_DATA_DIR`, else the platform's.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .map(|d| d.join("ragchat"))
                .unwrap_or_else(|| PathBuf::from(".ragchat"))
        })
    }

    /// The store URL after applying precedence: `--store`, `--redis`, `RAGCHAT_STORE`, default.
    pub(crate) fn store_url(&self) -> String {
        if let Some(url) = &self.store {
            return url.clone();
        }
        if let Some(url) = &self.redis {
            if !url.is_empty() {
                return url.clone();
            }
            return std::env::var("RAGCHAT_REDIS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_REDIS_URL.to_string());
        }
        if let Ok(url) = std::env::var("RAGCHAT_STORE") {
            if !url.is_empty() {
                return url;
            }
        }
        format!("sqlite://{}", self.data_dir().join("sessions.db").display())
    }

    /// Whether the store is shared over the network, and so backed by the journal.
    pub(crate) fn store_is_remote(&self) -> bool {
        ragchat_memory::is_remote_url(&self.store_url())
    }

    /// Refuses a `sqlite://` path whose folder does not exist, unless that folder is in the
    /// data dir (whose folders ragchat creates). A typo such as `sqlite:///nonexistent/x.db`
    /// must not silently create `/nonexistent`.
    ///
    /// # Errors
    /// `InvalidInput` (exit code 2) naming the missing folder.
    fn check_store_folder(&self, url: &str) -> Result<()> {
        let Ok(StoreSpec::Sqlite(path)) = parse_store_url(url) else {
            return Ok(()); // other stores, and malformed URLs, which opening reports
        };
        let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
            return Ok(());
        };
        let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or(p.to_path_buf());
        if folder.exists() || absolute(folder).starts_with(absolute(&self.data_dir())) {
            return Ok(());
        }
        Err(ragchat_memory::MemoryError::InvalidInput(format!(
            "cannot use the store {url}: the folder {} does not exist (create it first; \
             ragchat creates only its data dir, {})",
            folder.display(),
            self.data_dir().display()
        ))
        .into())
    }

    /// The manager configuration these options describe.
    pub(crate) fn manager_config(&self) -> ManagerConfig {
        let journal = self.store_is_remote().then(|| JournalConfig {
            path: self.data_dir().join("journal.db"),
            max_bytes: self.journal_max_mb.saturating_mul(1024 * 1024),
        });
        ManagerConfig {
            ttl: Ttl::secs(self.ttl),
            cache_bytes: self.cache_mb.saturating_mul(1024 * 1024),
            max_messages: self.max_messages,
            max_content_bytes: self.max_message_bytes,
            journal,
            store_timeout: Duration::from_millis(self.store_timeout_ms.max(1)),
            quotas: Quotas {
                session_bytes: self.max_session_mb.saturating_mul(MIB),
                user_sessions: self.max_sessions_per_user,
                user_bytes: self.max_user_mb.saturating_mul(MIB),
            },
            ..ManagerConfig::default()
        }
    }

    /// Store connection options.
    pub(crate) fn store_options(&self) -> StoreOptions {
        let t = Duration::from_millis(self.store_timeout_ms.max(1));
        StoreOptions {
            connect_timeout: t,
            command_timeout: t,
            lazy: self.store_is_remote(),
            v1_guard: self.redis_v1_guard,
            lean_append: self.redis_lean_append,
            ..StoreOptions::default()
        }
    }

    /// Checks the folders the store will write in, before opening anything: the data
    /// dir (journal, default SQLite file) and an SQLite file's folder. A folder that
    /// cannot be used is its own error (exit 1, naming it), not "store unavailable".
    ///
    /// # Errors
    /// Naming the folder and why it cannot be used.
    fn check_local_folders(&self, url: &str) -> Result<()> {
        if self.store_is_remote() {
            crate::data_dir::ensure_writable(&self.data_dir(), "data dir")?;
        }
        if let Ok(StoreSpec::Sqlite(path)) = parse_store_url(url) {
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(folder) = folder {
                let what = if folder == self.data_dir() {
                    "data dir"
                } else {
                    "folder of the SQLite store"
                };
                crate::data_dir::ensure_writable(folder, what)?;
            }
        }
        Ok(())
    }

    /// Opens the store and builds the manager. A remote store gets the local journal,
    /// and whatever an earlier process left in it is replayed first. With
    /// `--retention`, one retention pass runs before the manager is handed out.
    ///
    /// # Errors
    /// When the URL is invalid or the store (or journal) cannot be opened.
    pub(crate) async fn open_manager(&self) -> Result<Arc<SessionManager>> {
        self.open_manager_with(true).await
    }

    /// Redis at `url` with the archive at `archive` behind it.
    ///
    /// # Errors
    /// A bad archive URL or mode (exit 2), or a store that cannot be opened.
    async fn open_tiered(&self, url: &str, archive: &str) -> Result<Arc<TieredStore>> {
        self.check_store_folder(archive)?;
        self.check_local_folders(archive)?;
        let mode: ArchiveMode = self.archive_mode.parse()?;
        let defaults = TierConfig::default();
        let config = TierConfig {
            mode,
            ttl: Ttl::secs(self.ttl),
            max_messages: self.max_messages,
            sweep_every: defaults.sweep_every.filter(|_| self.long_running),
            ..defaults
        };
        let redacted = ragchat_memory::redact_url(archive);
        let store = open_tiered(url, archive, &self.store_options(), config)
            .await
            .with_context(|| {
                format!(
                    "cannot open the store {} with the archive {redacted}",
                    ragchat_memory::redact_url(url)
                )
            })?;
        TIERED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store.clone());
        Ok(store)
    }

    /// Like [`GlobalArgs::open_manager`]; `replay_now = false` leaves the journal for
    /// the caller to replay (and report on), and runs no retention pass.
    ///
    /// # Errors
    /// As [`GlobalArgs::open_manager`].
    pub(crate) async fn open_manager_with(&self, replay_now: bool) -> Result<Arc<SessionManager>> {
        let url = self.store_url();
        self.check_store_folder(&url)?;
        self.check_local_folders(&url)?;
        let redacted = ragchat_memory::redact_url(&url);
        let store = match &self.archive {
            Some(archive) => self.open_tiered(&url, archive).await? as Arc<dyn SessionStore>,
            None => open_store(&url, &self.store_options())
                .await
                .with_context(|| format!("cannot open the conversation store {redacted}"))?,
        };
        let config = self.manager_config();
        let manager = if config.journal.is_none() {
            SessionManager::new(store, config)
        } else {
            let manager = SessionManager::with_journal(store, config)
                .context("cannot open the local journal")?;
            if replay_now && manager.status().await?.pending_sync > 0 {
                let report = manager.replay_journal().await?;
                tracing::info!(
                    replayed = report.replayed,
                    remaining = report.remaining,
                    "replayed the local journal"
                );
            }
            manager
        };
        // A pass replays the journal first (journaled messages are activity), so a
        // caller that replays and reports on it itself (`sessions sync`) runs none.
        if let Some(max_age) = self.retention.0.filter(|_| replay_now) {
            run_first_pass(&manager, max_age).await;
        }
        Ok(Arc::new(manager))
    }
}

/// `on` or `off` (also `true`/`false`, `1`/`0`).
pub(crate) fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected on or off, not {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_redis_flag(args.iter().map(std::ffi::OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn redis_flag_takes_only_urls() {
        assert_eq!(
            norm(&["r", "--redis", "sessions"]),
            ["r", "--redis", "sessions"]
        );
        assert_eq!(
            norm(&["r", "--redis", "redis://h:1"]),
            ["r", "--redis=redis://h:1"]
        );
        assert_eq!(norm(&["r", "x", "--redis"]), ["r", "x", "--redis"]);
        assert_eq!(
            norm(&["r", "--redis=rediss://h"]),
            ["r", "--redis=rediss://h"]
        );
    }
}
