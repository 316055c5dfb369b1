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

mod types;

use async_trait::async_trait;

use crate::error::Result;
use crate::limits::{ListCursor, Quotas, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};

pub use types::{
    AppendOptions, AppendOutcome, ArchiveState, ArchiveStatus, CorruptEntry, Durability,
    LoadedSession, RedisDurability, SessionMeta, SessionPage, SessionSummary, Stamp, Tier, Ttl,
};

pub use crate::spec::StoreKind;
// The URL helpers' old paths (`store::parse_store_url`, ...), kept for callers; new
// code names them at the crate root or in `spec`.
pub use crate::spec::{parse_store_url, redact_url, StoreSpec};

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
