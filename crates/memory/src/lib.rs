//! ragchat-memory: conversation memory for LLM apps that never loses a conversation.
//!
//! A [`SessionManager`] keeps recent conversations in a bounded RAM cache and writes
//! through to a [`SessionStore`] chosen by URL. Conversations stay until a person
//! deletes them or retention does; the sliding TTL bounds only what a store keeps in
//! RAM (Redis), and deletes idle conversations only where nothing durable backs it
//! (Redis alone, `memory://`), which people are warned about:
//!
//! - [`message`]: `Message`, `Role`, `SourceRef`, `SessionKey` and id validation.
//! - [`store`]: the `SessionStore` contract and the types it speaks in (a leaf).
//! - [`spec`]: store URLs: the one list of schemes, `StoreSpec`, `parse_store_url`,
//!   `redact_url`, `StoreOptions`.
//! - [`limits`]: read bounds, page cursors and quotas: no call reads a whole session.
//! - [`backend`]: `open_store(url)` and the `memory://`, `sqlite://PATH` (feature
//!   `sqlite`), `redis://` / `rediss://` / `redis+cluster://` (feature `redis`)
//!   implementations.
//! - [`manager`]: `SessionManager`: cache, coherence across processes, TTL, limits,
//!   stats, retention.
//! - [`journal`]: the local durable journal that takes appends while the store is down.
//! - [`search`]: searching a user's own conversations: query, hits, cursor, snippets.
//! - [`title`]: the automatic title rule (first question) and given-title validation.
//! - [`context`]: rendering the recent history into an LLM prompt within a token budget.
//! - [`error`]: `MemoryError` and the `Result` alias.
//! - `files`: private files and folders (0600 / 0700) for the SQLite files ragchat creates.
//! - `testing` (feature `test-utils`): the conformance suite every backend must pass.

pub mod backend;
pub mod context;
pub mod error;
#[cfg(feature = "sqlite")]
mod files;
pub mod journal;
pub mod limits;
pub mod manager;
pub mod message;
pub mod search;
pub mod spec;
pub mod store;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
#[cfg(feature = "redis")]
pub mod tier;
pub mod title;

pub use backend::open_store;
pub use error::{MemoryError, Result};
pub use journal::{JournalConfig, OtherStore};
pub use limits::{ListCursor, PageCursor, Quotas, ReadFrom, ReadLimit};
pub use manager::{
    AppendReceipt, History, ManagerConfig, MemoryStatus, MessagePage, Mode, ReadStats, RecallScope,
    ReplayReport, RetentionPass, SessionManager, SessionStats,
};
pub use message::{
    Message, MessageId, MessageStatus, Role, SessionKey, SourceRef, DEFAULT_SESSION,
};
pub use search::{SearchCursor, SearchHit, SearchPage, SearchQuery};
pub use spec::{
    is_remote_url, parse_store_url, redact_url, RedisLocation, StoreKind, StoreOptions, StoreSpec,
};
pub use store::{
    ArchiveState, ArchiveStatus, Durability, RedisDurability, SessionPage, SessionStore,
    SessionSummary, Stamp, Tier, Ttl,
};
pub use title::{title_of, validate_title, MAX_GIVEN_TITLE_CHARS, MAX_TITLE_CHARS};
