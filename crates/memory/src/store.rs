//! `SessionStore`: the contract every storage backend keeps, and the types it speaks in.
//! Opening a store by URL is `backend::open_store`; URLs are parsed in `spec`.
//!
//! | URL | backend | pick it when |
//! |---|---|---|
//! | `memory://` | `MemoryStore` | tests and demos: process RAM, gone when the process exits |
//! | `sqlite://PATH` | `SqliteStore` (feature `sqlite`) | one machine, no services: durable, embedded (the default) |
//! | `redis://`, `rediss://` | `RedisStore` (feature `redis`) | several app servers sharing conversations |
//! | `redis+cluster://h1:p1,h2:p2` | `RedisStore` (feature `redis`) | more than one Redis can hold |
//! | `postgres://`, `postgresql://` | `PostgresStore` (feature `postgres`) | several app servers, durable, no Redis |
//!
//! Every store numbers the messages of a session with a per-session sequence (`seq`,
//! starting at 1, never reused while the session lives). Readers that cache a session
//! ask only for entries after the last `seq` they hold, which is what keeps a cached
//! read to one small round trip however long the conversation is.
//!
//! The contract, which `testing::conformance` checks for every backend:
//!
//! | operation | guarantee |
//! |---|---|
//! | `append` | atomic, idempotent by message id; consecutive `seq`s; trims beyond `max_messages`; refuses with `Quota` (writing nothing) when the new messages would break a [`Quotas`] limit; one round trip |
//! | `load` | entries from a [`ReadFrom`] point, bounded by a [`ReadLimit`] in messages *and* bytes (at least one entry), with `more` telling whether the bound left entries out; refreshes the TTL; one round trip; never reads a whole session |
//! | `meta` | counters without touching the TTL |
//! | `list` | one page of a user's sessions (most recent activity first, ties by id descending) after a [`ListCursor`], with the cursor of the next page; never the whole list |
//! | `set_title` | sets or clears the title given by a person, without touching the TTL or the activity time; `false` for a missing session |
//! | `delete` | every key of the session, and its share of the user's usage |
//! | `users` | one page of the users who have sessions, ascending (walking a whole store) |
//! | `purge_idle` | retention: deletes a bounded batch of the sessions idle since before a time |
//! | `identity` | what the store *is*, without credentials: journal entries are replayed only into the store they were written for |
//! | `warnings` | settings of the store that put conversations at risk (a Redis that may evict keys) |
//! | `durability` | what the store keeps on disk, as it reports it ([`Durability`]) |
//! | `search` | one page of the user's matching messages, best first, after a [`SearchCursor`](crate::search::SearchCursor); consistent with every append, delete and purge once it returns; `Unsupported` on a store without a durable tier |
//!
//! A store whose own keys were partly lost (Redis evicting single keys under
//! `maxmemory`) repairs the session from what is left on the next append or read,
//! says so (`repaired`), and never fails the call for it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;
use crate::limits::{ListCursor, Quotas, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};

pub use crate::spec::StoreKind;
// The URL helpers' old paths (`store::parse_store_url`, ...), kept for callers; new
// code names them at the crate root or in `spec`.
pub use crate::spec::{parse_store_url, redact_url, StoreSpec};

/// Expiry policy applied by a write or a read: every key of the session gets
/// `ttl_secs` again (0 = never expire).
///
/// Only stores that keep sessions in RAM honour it (Redis, `memory://`): it bounds
/// how long an idle session occupies that RAM. Durable stores (SQLite, PostgreSQL)
/// ignore it; what deletes there is retention ([`SessionStore::purge_idle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    /// Seconds of idleness after which a store that honours it drops the session;
    /// 0 = never.
    pub secs: u64,
}

impl Ttl {
    /// Sessions never expire.
    pub const NEVER: Ttl = Ttl { secs: 0 };

    /// Expire after `secs` idle seconds (0 = never).
    pub fn secs(secs: u64) -> Self {
        Ttl { secs }
    }

    /// The expiry instant for a session touched at `now_ms`, if any.
    pub(crate) fn expires_at_ms(self, now_ms: i64) -> Option<i64> {
        (self.secs > 0).then(|| now_ms.saturating_add((self.secs as i64).saturating_mul(1000)))
    }
}

/// Options of one append.
#[derive(Clone, Copy, Debug)]
pub struct AppendOptions {
    /// TTL to (re)apply to the whole session.
    pub ttl: Ttl,
    /// Keep at most this many messages; the oldest are trimmed in the same atomic
    /// step (0 = unbounded).
    pub max_messages: u64,
    /// Re-apply `ttl` to every key of the session. When `false`, a store may leave the
    /// expiry of existing keys as it is (keys the append creates always get it); the
    /// manager asks for a refresh at least every tenth of the TTL.
    pub refresh_ttl: bool,
    /// Limits the append must keep (checked atomically with it; 0 = unbounded).
    pub quotas: Quotas,
}

impl AppendOptions {
    /// Keep everything: no expiry, no trim, no quota (loading data: an archive, a
    /// benchmark's or an evaluation's messages).
    pub const KEEP_ALL: AppendOptions = AppendOptions {
        ttl: Ttl::NEVER,
        max_messages: 0,
        refresh_ttl: true,
        quotas: Quotas::UNBOUNDED,
    };
}

/// What a store knows about a session, returned by every append and read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionMeta {
    /// Messages currently stored.
    pub message_count: u64,
    /// Sum of [`Message::stored_bytes`] over stored messages.
    pub bytes: u64,
    /// When the session was created (milliseconds since the epoch).
    pub created_at_ms: i64,
    /// When a message was last appended.
    pub updated_at_ms: i64,
    /// The highest `seq` given out so far.
    pub last_seq: u64,
    /// Every `seq` up to and including this one has been trimmed away.
    pub trimmed_seq: u64,
    /// Seconds until the session expires; `None` = never.
    pub ttl_remaining_secs: Option<u64>,
    /// The title given by a person, else the automatic one (the first question);
    /// `None` when neither is known (no question yet, or a session stored before
    /// titles existed).
    pub title: Option<String>,
}

/// When a store command was sent, as a store that hears about changes (Redis with
/// client-side caching) can tell: a copy of a session made from that command's reply
/// is current while [`SessionStore::unchanged_since`] says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub(crate) generation: u64,
    pub(crate) counter: u64,
}

/// Result of an append.
#[derive(Clone, Debug)]
pub struct AppendOutcome {
    /// For each message given, in order: `Some(seq)` when it was stored now, `None`
    /// when a message with that id was already there (an idempotent replay).
    pub seqs: Vec<Option<u64>>,
    /// The session after the append.
    pub meta: SessionMeta,
    /// When the append was sent, for stores that report changes (else `None`).
    pub stamp: Option<Stamp>,
    /// The session's keys were partly missing (evicted) and were rebuilt first.
    pub repaired: bool,
}

impl AppendOutcome {
    /// How many of the messages were stored by this append.
    pub fn stored(&self) -> usize {
        self.seqs.iter().filter(|s| s.is_some()).count()
    }
}

/// A stored entry that could not be decoded and was skipped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CorruptEntry {
    /// Its position in the session, if that much could be read.
    pub seq: Option<u64>,
    /// What was wrong with it.
    pub reason: String,
}

/// Result of a read: the session's metadata and the entries asked for.
#[derive(Clone, Debug)]
pub struct LoadedSession {
    /// The session as it is now.
    pub meta: SessionMeta,
    /// `(seq, message)` for the entries read, in `seq` order.
    pub messages: Vec<(u64, Message)>,
    /// Entries read that could not be decoded (skipped, never fatal).
    pub corrupt: Vec<CorruptEntry>,
    /// When the read was sent, for stores that report changes (else `None`).
    pub stamp: Option<Stamp>,
    /// The read's bound left entries of its range out: newer ones after the last
    /// entry (for [`ReadFrom::After`]), or older ones before the first (for
    /// [`ReadFrom::Newest`]).
    pub more: bool,
    /// The session's keys were partly missing (evicted) and were rebuilt first.
    pub repaired: bool,
}

impl LoadedSession {
    /// The highest seq among the entries read (corrupt ones included), if any.
    pub fn last_seq_read(&self) -> Option<u64> {
        let good = self.messages.iter().map(|(s, _)| *s);
        let bad = self.corrupt.iter().filter_map(|c| c.seq);
        good.chain(bad).max()
    }
}

/// One line of a user's session list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct SessionSummary {
    /// The session id.
    pub session: String,
    /// Messages stored.
    pub message_count: u64,
    /// Stored bytes.
    pub bytes: u64,
    /// Creation time.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Last append.
    #[cfg_attr(feature = "schema", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
    /// Seconds until expiry; `None` = never.
    pub ttl_remaining_secs: Option<u64>,
    /// The conversation's title: the one given by a person, else its first question
    /// (see [`crate::title`]); `null` when it has none yet.
    pub title: Option<String>,
    /// Where the conversation is now, on a Redis store with an archive: `hot` (in
    /// Redis) or `archived` (only in the archive, loaded back on its next use).
    /// Absent for a store used alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
}

/// Which tier of a Redis store with an archive holds a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// In Redis: active, shared by every server.
    Hot,
    /// Only in the archive (idle past the TTL, or Redis lost it).
    Archived,
}

/// How the archive behind a Redis store is doing (see [`SessionStore::archive_status`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct ArchiveStatus {
    /// `ok` (caught up or catching up), `down` (its last write failed).
    pub state: ArchiveState,
    /// Acknowledged messages this process knows are not archived yet.
    pub lag_messages: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub lag_seconds: f64,
    /// Messages this process has written to the archive since it started.
    pub written_total: u64,
    /// Conversations this process loaded back from the archive into Redis.
    pub rehydrations_total: u64,
    /// Why the last archive write failed, while `state` is `down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The state in an [`ArchiveStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ArchiveState {
    /// Writes succeed; what is behind is being written.
    Ok,
    /// The last write failed; what is behind stays in Redis (never expiring) until
    /// the archive answers again.
    Down,
}

/// One page of a user's sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionPage {
    /// Most recent activity first.
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<ListCursor>,
}

/// What a store keeps on disk, as the store itself reports it (see
/// [`SessionStore::durability`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Durability {
    /// Nothing outlives the process (`memory://`).
    None,
    /// An SQLite file, with the settings that decide what a crash can lose.
    Sqlite {
        /// `PRAGMA journal_mode` (`wal`, `delete`, ...).
        journal_mode: String,
        /// `PRAGMA synchronous` (`0` off, `1` normal, `2` full, `3` extra).
        synchronous: i64,
    },
    /// Redis, with what it said about its persistence.
    Redis(RedisDurability),
    /// PostgreSQL, with the settings that decide what a crash can lose.
    Postgres {
        /// `synchronous_commit` (`on`, `remote_apply`, `remote_write`, `local`, `off`).
        synchronous_commit: String,
        /// `fsync` (`on`, or `off`: a server crash may corrupt the cluster).
        fsync: String,
    },
    /// The store did not say (unreachable, or it refused to tell).
    Unknown,
}

/// A Redis server's persistence settings, as far as it told them: `CONFIG GET`, or
/// `INFO persistence` where `CONFIG` is refused (managed Redis), which shows the
/// append-only file but not the snapshot schedule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RedisDurability {
    /// `appendonly`: an append-only file is kept.
    pub appendonly: Option<bool>,
    /// `appendfsync`: `always`, `everysec` or `no` (how much an AOF may lose on a crash).
    pub appendfsync: Option<String>,
    /// `save`: the RDB snapshot schedule (empty = no snapshots).
    pub save: Option<String>,
}

/// A conversation store.
///
/// The contract (see the module's table), which `testing::conformance` checks for
/// every backend:
/// - `append` is atomic and idempotent by message id: messages whose id is already
///   stored are skipped; the rest get consecutive `seq`s after the session's last one;
///   the session's meta is updated, the TTL re-applied (always to keys the append
///   creates; to the others when `refresh_ttl` asks, or always) and, beyond
///   `max_messages`, the oldest entries are trimmed, all in one step (one round trip
///   for remote stores). An append whose new messages would break `quotas` fails
///   with `Quota` and writes nothing (messages already stored do not count).
/// - `load` refreshes the TTL of the whole session and returns a bounded run of
///   entries, in one round trip; `None` when the session does not exist (or expired).
/// - the append that brings a session's first user message sets its automatic title
///   ([`crate::title::title_of`]); later appends never change it.
/// - `meta` and `list` do not refresh TTLs: looking is not using.
/// - a corrupt entry is skipped and reported; it never fails the read.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// The backend kind.
    fn kind(&self) -> StoreKind;

    /// The store's URL with any password removed, for logs and stats.
    fn describe(&self) -> String;

    /// What the store is, independent of credentials and of how it is reached: its
    /// kind, place and database (`redis://host:6379/0`, `sqlite:///var/lib/s.db`). The
    /// local journal tags every entry with it and replays an entry only into the store
    /// with the same identity.
    fn identity(&self) -> String;

    /// Creates the session if it does not exist (no messages) and applies the TTL.
    /// Quotas are checked by the first append, not here (an empty session holds
    /// nothing). Provided: an append of no messages that refreshes the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn create(&self, key: &SessionKey, ttl: Ttl) -> Result<SessionMeta> {
        let opts = AppendOptions {
            ttl,
            max_messages: 0,
            refresh_ttl: true,
            quotas: Quotas::UNBOUNDED,
        };
        Ok(self.append(key, &[], opts).await?.meta)
    }

    /// Appends messages (see the trait docs for the guarantees).
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached: then nothing was stored, or
    /// everything was (retrying with the same ids is always safe).
    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome>;

    /// A bounded run of entries from `from` (see [`ReadFrom`] and [`ReadLimit`]), and
    /// the session's meta; refreshes the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>>;

    /// The session's meta without touching its TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>>;

    /// One page of the user's live sessions: at most `limit` (at least 1), most recent
    /// activity first (ties by session id, descending), starting after `after`.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage>;

    /// Sets the title given by a person (`None` clears it: the automatic title shows
    /// again). The caller validates it ([`crate::title::validate_title`]). Does not
    /// refresh the TTL nor count as activity. Returns whether the session exists.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool>;

    /// Removes every key of the session. Returns whether it existed.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn delete(&self, key: &SessionKey) -> Result<bool>;

    /// One page of the ids of the users who have sessions, in ascending id order,
    /// starting after `after`, at most `limit` (at least 1): how a whole store is walked
    /// (`sessions migrate`). Stores that cannot enumerate their users say `InvalidInput`.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn users(&self, _after: Option<&str>, _limit: usize) -> Result<Vec<String>> {
        Err(crate::error::MemoryError::invalid(format!(
            "{:?} stores cannot list their users",
            self.kind()
        )))
    }

    /// Retention: deletes at most `limit` sessions whose last activity is before
    /// `before_ms` (ms since the epoch), oldest first, and returns their keys (fewer
    /// than `limit` = none older is left). A store that keeps nothing durably (Redis
    /// alone: its TTL already bounds a conversation's life) says `InvalidInput`.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    async fn purge_idle(&self, _before_ms: i64, _limit: usize) -> Result<Vec<SessionKey>> {
        Err(crate::error::MemoryError::invalid(format!(
            "{:?} stores have no retention of their own",
            self.kind()
        )))
    }

    /// One page of the user's messages that match `query` (see [`crate::search`]), best
    /// first, only from `query.session` when it names one. Every message whose append
    /// was acknowledged by this store handle is found; deleted and purged ones never
    /// are. The caller has validated the query ([`SearchQuery::validate`]).
    ///
    /// # Errors
    /// `Unsupported` for a store without a durable tier (the default: Redis alone,
    /// `memory://`); `Unavailable` when the store cannot be reached.
    async fn search(&self, _user: &str, _query: &SearchQuery) -> Result<SearchPage> {
        Err(crate::search::unsupported(self.kind()))
    }

    /// Whether [`SessionStore::search`] can answer (a store with a durable tier), known
    /// without asking the store: a caller refuses a search up front instead of calling
    /// a store that cannot answer it (which says nothing about its health).
    fn searches(&self) -> bool {
        false
    }

    /// Checks that the store answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<()>;

    /// Whether the store is sure nothing about `key` changed since `stamp` (taken by a
    /// `load` or `append` of this store), so a copy made then can be served without
    /// asking. Stores that cannot tell say `false` (the default).
    fn unchanged_since(&self, _key: &SessionKey, _stamp: Stamp) -> bool {
        false
    }

    /// Whether a session outlives any idleness, deleted only by retention or by a
    /// person (`true`, the default: SQLite, PostgreSQL, a Redis store with an archive);
    /// `false` for a store whose TTL deletes idle sessions (Redis alone), which people
    /// are warned about.
    fn keeps_idle_sessions(&self) -> bool {
        true
    }

    /// How the archive behind this store is doing; `None` for a store without one
    /// (the default).
    fn archive_status(&self) -> Option<ArchiveStatus> {
        None
    }

    /// Settings of the store that put conversations at risk, for people (empty when
    /// there are none, or the store cannot tell).
    async fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// What the store keeps on disk, as it reports it now (`Unknown` when it cannot
    /// tell, the default). Bounded by the store's command timeout; never an error.
    async fn durability(&self) -> Durability {
        Durability::Unknown
    }
}
