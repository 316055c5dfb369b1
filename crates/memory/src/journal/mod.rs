//! The local journal: where appends go while the shared store is unreachable.
//!
//! An SQLite file in the data dir (WAL, `synchronous=FULL`), one transaction per
//! append, so an append acknowledged from the journal survives `kill -9` and power
//! loss. Entries leave the journal only after the store has acknowledged them; a
//! replay that repeats entries is harmless because store appends are idempotent by
//! message id. The journal is bounded by bytes: when full, appends fail with
//! `Unavailable` instead of dropping anything.
//!
//! Every entry carries the identity of the store it was written for
//! ([`SessionStore::identity`](crate::SessionStore::identity)). A [`Journal`] handle
//! is opened for one store and sees, replays and removes only that store's entries;
//! entries for other stores (the same data dir used with another Redis) are kept and
//! reported ([`Journal::other_stores`]), never replayed elsewhere.
//!
//! The journal needs the `sqlite` feature; a build without it has a [`Journal`] that
//! cannot be opened (so a remote store there runs without one).
//!
//! The file is private (0600) and erasures leave no plaintext behind:
//! `secure_delete` overwrites removed entries, and [`Journal::scrub`] empties the
//! write-ahead log, which still holds earlier versions of the pages.

#[cfg(feature = "sqlite")]
mod file;
#[cfg(feature = "sqlite")]
mod schema;
#[cfg(feature = "sqlite")]
mod stores;
#[cfg(not(feature = "sqlite"))]
mod unavailable;

#[cfg(feature = "sqlite")]
pub use self::file::Journal;
#[cfg(feature = "sqlite")]
pub use self::stores::other_stores_in;
#[cfg(not(feature = "sqlite"))]
pub use self::unavailable::{other_stores_in, Journal};

use std::path::PathBuf;

use serde::Serialize;

use crate::message::Message;

/// Default journal bound: 1 GiB.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// How unlabelled entries (written before entries named their store) are reported.
pub const UNLABELLED_STORE: &str = "unlabelled (written before ragchat recorded stores)";

/// Where the journal lives and how big it may grow.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Most bytes of messages it may hold (over every store).
    pub max_bytes: u64,
}

/// One pending entry.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    /// Position in the journal.
    pub seq: i64,
    /// The message as it was acknowledged.
    pub message: Message,
}

/// What the journal holds for this handle's store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Pending messages.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
    /// When the oldest was journaled (ms since the epoch).
    pub oldest_ms: Option<i64>,
}

/// Entries the journal keeps for a store other than this handle's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OtherStore {
    /// That store's identity (no credentials), or [`UNLABELLED_STORE`].
    pub store: String,
    /// Messages waiting for it.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
}
