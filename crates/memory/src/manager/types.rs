//! The manager's public configuration and result types.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::breaker::BreakerConfig;
use crate::journal::{JournalConfig, OtherStore};
use crate::limits::{PageCursor, Quotas, ReadLimit};
use crate::message::Message;
use crate::store::Ttl;

/// Default sliding TTL: one hour of idleness.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Default RAM cache size: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on messages kept per session.
pub const DEFAULT_MAX_MESSAGES: u64 = 10_000;
/// Default limit on one message's content: 64 KiB.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 64 * 1024;
/// Default bound on one call to a shared store when a journal backs it up.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(250);
/// Default bound of the recent history a read holds (and the cache keeps per
/// session): 10 000 messages or 1 MiB, whichever comes first. A chat turn's token
/// budget uses far less; a longer conversation is paged ([`SessionManager::page`](super::SessionManager::page)).
pub const DEFAULT_HISTORY_LIMIT: ReadLimit = ReadLimit::new(10_000, 1024 * 1024);
/// Default bound in bytes of one page of messages (1 MiB).
pub const DEFAULT_PAGE_BYTES: u64 = 1024 * 1024;
/// Default quotas: 16 MiB per session, 1000 sessions and 256 MiB per user.
pub const DEFAULT_QUOTAS: Quotas = Quotas {
    session_bytes: 16 * 1024 * 1024,
    user_sessions: 1000,
    user_bytes: 256 * 1024 * 1024,
};

/// How a `SessionManager` behaves.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Sliding expiry of idle sessions in stores that keep them in RAM (Redis,
    /// `memory://`; 0 = never). Durable stores ignore it: retention
    /// ([`SessionManager::purge_idle_once`](super::SessionManager::purge_idle_once))
    /// is what deletes there.
    pub ttl: Ttl,
    /// RAM cache budget in bytes (0 disables the cache).
    pub cache_bytes: u64,
    /// Messages kept per session; older ones are trimmed on append (0 = unbounded).
    pub max_messages: u64,
    /// Longest accepted message content, in bytes.
    pub max_content_bytes: usize,
    /// The most recent history one read returns and the cache keeps per session.
    pub history_limit: ReadLimit,
    /// Limits per session and per user that appends must keep (0 = unbounded).
    pub quotas: Quotas,
    /// Local journal that takes appends while the store is unreachable (degraded
    /// mode). `None`: store failures are returned to the caller.
    pub journal: Option<JournalConfig>,
    /// With a journal: the longest any store call may take before it counts as a
    /// failure and the journal takes over.
    pub store_timeout: Duration,
    /// With a journal: when to stop calling the store and when to probe it again.
    pub breaker: BreakerConfig,
    /// With a journal: how often the background task looks for entries to replay.
    pub replay_interval: Duration,
    /// With a journal: replay in a background task (`false`: only when asked, through
    /// `replay_journal`, and before reading a session with journaled messages).
    pub background_replay: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            ttl: Ttl::secs(DEFAULT_TTL_SECS),
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
            history_limit: DEFAULT_HISTORY_LIMIT,
            quotas: DEFAULT_QUOTAS,
            journal: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            breaker: BreakerConfig::default(),
            replay_interval: Duration::from_millis(500),
            background_replay: true,
        }
    }
}

/// Whether the shared store is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Reads and appends go to the store.
    Normal,
    /// The store is unreachable: appends go to the local journal, reads to the cache
    /// and the journal.
    Degraded,
}

/// Health of conversation memory, for `/readyz`, stats and the CLI.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryStatus {
    /// Normal or degraded.
    pub mode: Mode,
    /// The store (redacted URL).
    pub store: String,
    /// Messages waiting in the local journal for the store.
    pub pending_sync: u64,
    /// Bytes waiting in the journal.
    pub pending_bytes: u64,
    /// Age of the oldest waiting message.
    pub oldest_pending_secs: Option<u64>,
    /// The last store error seen, if the store has failed since it last answered.
    pub last_error: Option<String>,
    /// The journal file, when there is one.
    pub journal: Option<PathBuf>,
    /// How history reads were served since the manager started.
    pub reads: ReadStats,
    /// Conversations found with keys partly missing (evicted by Redis) and repaired,
    /// since the manager started.
    pub repairs: u64,
    /// Sessions retention deleted through this manager since it started.
    pub retention_deleted: u64,
    /// Journal entries kept for other stores (never replayed into this one).
    pub other_stores: Vec<OtherStore>,
}

/// How reads (of the recent history or of a page) were served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// From the RAM cache with no round trip: the store vouched nothing had changed.
    pub from_cache: u64,
    /// After one round trip to the store (new entries fetched, TTL refreshed).
    pub from_store: u64,
    /// While the store was unreachable, from the cache and the journal.
    pub degraded: u64,
}

/// A session's figures, as `ragchat sessions stats` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SessionStats {
    /// The user id.
    pub user: String,
    /// The session id.
    pub session: String,
    /// Messages stored (in degraded mode: known to this process).
    pub message_count: u64,
    /// Bytes stored (content plus encoded sources).
    pub bytes: u64,
    /// Seconds until the session expires if left idle; `None` = never (or unknown
    /// while degraded).
    pub ttl_remaining_secs: Option<u64>,
    /// When the session was created.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// When a message was last appended.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
    /// The store, as a redacted URL.
    pub store: String,
    /// Whether the store answered.
    pub mode: Mode,
    /// Messages of this session waiting in the local journal.
    pub pending_sync: u64,
    /// The conversation's title: the one given by a person, else its first question;
    /// `null` when it has none yet (or the store is unreachable).
    pub title: Option<String>,
}

/// A snapshot of a session's messages in conversation order (oldest first).
///
/// Cheap to take: it shares the cached messages instead of copying them. Drop it
/// before appending to the same session, or the next append copies the cache once.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub(crate) messages: Arc<VecDeque<Message>>,
    pub(crate) corrupt_skipped: usize,
    pub(crate) partial: bool,
    pub(crate) earlier: bool,
}

impl History {
    /// Number of messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Messages, oldest first.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, Message> {
        self.messages.iter()
    }

    /// The newest message.
    pub fn last(&self) -> Option<&Message> {
        self.messages.back()
    }

    /// Stored entries that could not be decoded (skipped and logged).
    pub fn corrupt_skipped(&self) -> usize {
        self.corrupt_skipped
    }

    /// True when the store was unreachable and this history comes from what this
    /// process had cached or journaled: older messages may be missing.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// True when the conversation has older messages than these: a history holds the
    /// recent tail within [`ManagerConfig::history_limit`]; page through the rest.
    pub fn has_earlier(&self) -> bool {
        self.earlier
    }

    /// Copies the messages out.
    pub fn to_vec(&self) -> Vec<Message> {
        self.messages.iter().cloned().collect()
    }
}

impl<'a> IntoIterator for &'a History {
    type Item = &'a Message;
    type IntoIter = std::collections::vec_deque::Iter<'a, Message>;

    fn into_iter(self) -> Self::IntoIter {
        self.messages.iter()
    }
}

/// What an append did.
#[derive(Clone, Debug)]
pub struct AppendReceipt {
    /// The messages given.
    pub messages: Vec<Message>,
    /// How many were new to the store (all of them, when journaled).
    pub stored: usize,
    /// How many were already stored (same id) and skipped.
    pub duplicates: usize,
    /// True when the store was unreachable and the local journal took the messages:
    /// acknowledged locally, to be replayed to the store.
    pub journaled: bool,
}

/// One page of a session's messages, read from the store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MessagePage {
    /// The page's messages, in conversation order.
    pub messages: Vec<Message>,
    /// Whether the store holds messages after this page (or messages still in the
    /// journal come on the next page).
    pub has_more: bool,
    /// Where the next page starts (after this page's last stored message); `None` when
    /// the page is empty and no cursor was given, or the page is partial.
    pub next_cursor: Option<PageCursor>,
    /// True when the store was unreachable and the page is what this process kept
    /// (its cache and the local journal): older messages may be missing. Also on a
    /// last page when the journal holds more of the session's messages than it shows.
    pub partial: bool,
    /// Stored entries of the page that could not be decoded (skipped and logged).
    pub corrupt_skipped: usize,
}

/// What a replay moved from the journal to the store.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Sessions that had pending entries.
    pub sessions: usize,
    /// Entries acknowledged by the store and removed from the journal.
    pub replayed: u64,
    /// Of those, entries the store already had (a repeated replay; not doubled).
    pub already_stored: u64,
    /// Entries still pending.
    pub remaining: u64,
    /// Why the replay stopped early, if it did.
    pub error: Option<String>,
    /// Entries the journal keeps for other stores: never replayed here.
    pub other_stores: Vec<OtherStore>,
}

/// Every session of one user, for data portability.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct UserExport {
    /// The user id.
    pub user: String,
    /// When the export was made.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub exported_at: DateTime<Utc>,
    /// The store it came from.
    pub store: String,
    /// Each session with its full history.
    pub sessions: Vec<SessionExport>,
}

/// One session in an export.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SessionExport {
    /// The session id.
    pub session: String,
    /// When it was created.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// When a message was last appended.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
    /// Its messages, in conversation order.
    pub messages: Vec<Message>,
}
