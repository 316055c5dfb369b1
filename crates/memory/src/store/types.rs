//! The types the store contract speaks in: expiry and append options, what an append
//! and a load return, session summaries and pages, archive state, durability.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::limits::{ListCursor, Quotas};
use crate::message::Message;

/// Expiry policy applied by a write or a read: every key of the session gets
/// `ttl_secs` again (0 = never expire).
///
/// Only stores that keep sessions in RAM honour it (Redis, `memory://`): it bounds
/// how long an idle session occupies that RAM. Durable stores (SQLite, PostgreSQL)
/// ignore it; what deletes there is retention ([`SessionStore::purge_idle`](crate::store::SessionStore::purge_idle)).
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
/// is current while [`SessionStore::unchanged_since`](crate::store::SessionStore::unchanged_since) says so.
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
    /// entry (for [`ReadFrom::After`](crate::limits::ReadFrom::After)), or older ones before the first (for
    /// [`ReadFrom::Newest`](crate::limits::ReadFrom::Newest)).
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

/// How the archive behind a Redis store is doing (see [`SessionStore::archive_status`](crate::store::SessionStore::archive_status)).
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
/// [`SessionStore::durability`](crate::store::SessionStore::durability)).
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
