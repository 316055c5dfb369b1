//! `SessionManager`: the public face of conversation memory.
//!
//! It sits in front of any [`SessionStore`] and adds:
//! - a bounded RAM cache of recent sessions, weighted by bytes, written through on
//!   every append;
//! - coherence across processes: before a cached session is served, the store is asked
//!   only for entries after the cached tail (one round trip), so managers on several
//!   servers see each other's appends without reloading whole conversations;
//! - the sliding TTL, applied to the whole session on every append and every read;
//! - input limits (ids, empty or oversized content) checked before anything is written;
//! - per-session stats, listing, delete and export.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::context;
use crate::error::{MemoryError, Result};
use crate::message::{millis_to_datetime, Message, Role, SessionKey, SourceRef};
use crate::store::{
    AppendOptions, LoadedSession, SessionMeta, SessionStore, SessionSummary, StoreKind, Ttl,
};

/// Default sliding TTL: one hour of idleness.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Default RAM cache size: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on messages kept per session.
pub const DEFAULT_MAX_MESSAGES: u64 = 10_000;
/// Default limit on one message's content: 64 KiB.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 64 * 1024;

/// How a `SessionManager` behaves.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Sliding expiry of idle sessions (0 = never).
    pub ttl: Ttl,
    /// RAM cache budget in bytes (0 disables the cache).
    pub cache_bytes: u64,
    /// Messages kept per session; older ones are trimmed on append (0 = unbounded).
    pub max_messages: u64,
    /// Longest accepted message content, in bytes.
    pub max_content_bytes: usize,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            ttl: Ttl::secs(DEFAULT_TTL_SECS),
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_messages: DEFAULT_MAX_MESSAGES,
            max_content_bytes: DEFAULT_MAX_CONTENT_BYTES,
        }
    }
}

/// A session's figures, as `ragchat sessions stats` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionStats {
    /// The user id.
    pub user: String,
    /// The session id.
    pub session: String,
    /// Messages stored.
    pub message_count: u64,
    /// Bytes stored (content plus encoded sources).
    pub bytes: u64,
    /// Seconds until the session expires if left idle; `None` = never.
    pub ttl_remaining_secs: Option<u64>,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When a message was last appended.
    pub updated_at: DateTime<Utc>,
    /// The store, as a redacted URL.
    pub store: String,
}

/// A snapshot of a session's messages, oldest first.
///
/// Cheap to take: it shares the cached messages instead of copying them. Drop it
/// before appending to the same session, or the next append copies the cache once.
#[derive(Clone, Debug, Default)]
pub struct History {
    messages: Arc<VecDeque<Message>>,
    corrupt_skipped: usize,
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

    /// Stored entries that could not be decoded on the last full load (skipped).
    pub fn corrupt_skipped(&self) -> usize {
        self.corrupt_skipped
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
    /// The messages given, as stored (or as already present, for replays).
    pub messages: Vec<Message>,
    /// How many were new.
    pub stored: usize,
    /// How many were already stored (same id) and skipped.
    pub duplicates: usize,
}

/// Every session of one user, for data portability.
#[derive(Clone, Debug, Serialize)]
pub struct UserExport {
    /// The user id.
    pub user: String,
    /// When the export was made.
    pub exported_at: DateTime<Utc>,
    /// The store it came from.
    pub store: String,
    /// Each session with its full history.
    pub sessions: Vec<SessionExport>,
}

/// One session in an export.
#[derive(Clone, Debug, Serialize)]
pub struct SessionExport {
    /// The session id.
    pub session: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a message was last appended.
    pub updated_at: DateTime<Utc>,
    /// Its messages, oldest first.
    pub messages: Vec<Message>,
}

/// The cached state of one session.
#[derive(Debug)]
struct Cached {
    /// Identifies this incarnation of the session (a deleted and recreated session differs).
    created_at_ms: i64,
    /// Every entry up to this seq is in `messages` (or was trimmed or corrupt).
    last_seq: u64,
    seqs: VecDeque<u64>,
    messages: Arc<VecDeque<Message>>,
    ram_bytes: u64,
    corrupt_skipped: usize,
}

impl Cached {
    fn from_load(loaded: LoadedSession) -> Self {
        let mut cached = Cached {
            created_at_ms: loaded.meta.created_at_ms,
            last_seq: 0,
            seqs: VecDeque::with_capacity(loaded.messages.len()),
            messages: Arc::new(VecDeque::with_capacity(loaded.messages.len())),
            ram_bytes: 0,
            corrupt_skipped: loaded.corrupt.len(),
        };
        cached.merge(loaded.messages, &loaded.meta);
        cached
    }

    /// Adds entries newer than the cached tail, in seq order, and applies the store's
    /// trimming. Entries at or below the tail are already here.
    fn merge(&mut self, entries: Vec<(u64, Message)>, meta: &SessionMeta) {
        let fresh: Vec<(u64, Message)> = entries
            .into_iter()
            .filter(|(seq, _)| *seq > self.last_seq)
            .collect();
        let needs_trim = self.seqs.front().is_some_and(|s| *s <= meta.trimmed_seq);
        if fresh.is_empty() && !needs_trim {
            self.last_seq = self.last_seq.max(meta.last_seq);
            return;
        }
        let messages = Arc::make_mut(&mut self.messages);
        for (seq, m) in fresh {
            self.ram_bytes += m.ram_bytes() + 8;
            self.seqs.push_back(seq);
            messages.push_back(m);
            self.last_seq = seq;
        }
        self.last_seq = self.last_seq.max(meta.last_seq);
        while self.seqs.front().is_some_and(|s| *s <= meta.trimmed_seq) {
            self.seqs.pop_front();
            if let Some(m) = messages.pop_front() {
                self.ram_bytes = self.ram_bytes.saturating_sub(m.ram_bytes() + 8);
            }
        }
    }

    fn history(&self) -> History {
        History {
            messages: Arc::clone(&self.messages),
            corrupt_skipped: self.corrupt_skipped,
        }
    }
}

type Entry = Arc<Mutex<Cached>>;

/// Conversation memory: a RAM cache in front of a durable, possibly shared, store.
///
/// Create one per process and share it (`Arc<SessionManager>` or clone the store
/// handle); all methods take `&self` and are safe to call from many tasks.
pub struct SessionManager {
    store: Arc<dyn SessionStore>,
    cache: moka::sync::Cache<SessionKey, Entry>,
    config: ManagerConfig,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.store.describe())
            .field("config", &self.config)
            .finish()
    }
}

fn lock(entry: &Entry) -> std::sync::MutexGuard<'_, Cached> {
    entry.lock().unwrap_or_else(|e| e.into_inner())
}

impl SessionManager {
    /// A manager over `store`.
    pub fn new(store: Arc<dyn SessionStore>, config: ManagerConfig) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_bytes)
            .weigher(|_k: &SessionKey, v: &Entry| -> u32 {
                lock(v).ram_bytes.min(u32::MAX as u64) as u32
            })
            .build();
        SessionManager {
            store,
            cache,
            config,
        }
    }

    /// The store behind this manager.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The store's redacted URL.
    pub fn store_url(&self) -> String {
        self.store.describe()
    }

    /// Creates an empty session if it does not exist, and (re)applies the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn create_session(&self, key: &SessionKey) -> Result<SessionStats> {
        let meta = self.store.create(key, self.config.ttl).await?;
        Ok(self.stats_from(key, &meta))
    }

    /// The session's stats, or `None` when it does not exist. Does not refresh the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        self.stats(key).await
    }

    /// Message count, bytes, TTL remaining, timestamps and store of a session; `None`
    /// when it does not exist. Looking does not refresh the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn stats(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        Ok(self
            .store
            .meta(key)
            .await?
            .map(|meta| self.stats_from(key, &meta)))
    }

    fn stats_from(&self, key: &SessionKey, meta: &SessionMeta) -> SessionStats {
        SessionStats {
            user: key.user().to_string(),
            session: key.session().to_string(),
            message_count: meta.message_count,
            bytes: meta.bytes,
            ttl_remaining_secs: meta.ttl_remaining_secs,
            created_at: millis_to_datetime(meta.created_at_ms),
            updated_at: millis_to_datetime(meta.updated_at_ms),
            store: self.store.describe(),
        }
    }

    /// Appends one new message and returns it.
    ///
    /// # Errors
    /// `InvalidInput` for empty or oversized content; `Unavailable` when the store
    /// cannot be reached.
    pub async fn add_message(
        &self,
        key: &SessionKey,
        role: Role,
        content: impl Into<String>,
        sources: Vec<SourceRef>,
    ) -> Result<Message> {
        let message = Message::new(role, content).with_sources(sources);
        let mut receipt = self.append(key, vec![message]).await?;
        receipt
            .messages
            .pop()
            .ok_or_else(|| MemoryError::Corrupt("append returned no message".into()))
    }

    /// Appends messages in one atomic round trip, refreshing the session's TTL.
    ///
    /// Idempotent: messages whose id is already stored are skipped, so retrying a
    /// failed or uncertain append with the same messages never doubles them.
    ///
    /// # Errors
    /// `InvalidInput` (nothing written) when any message is empty or over the content
    /// limit; `Unavailable` when the store cannot be reached.
    pub async fn append(&self, key: &SessionKey, messages: Vec<Message>) -> Result<AppendReceipt> {
        for m in &messages {
            self.validate(m)?;
        }
        if messages.is_empty() {
            return Ok(AppendReceipt {
                messages,
                stored: 0,
                duplicates: 0,
            });
        }
        let opts = AppendOptions {
            ttl: self.config.ttl,
            max_messages: self.config.max_messages,
        };
        let outcome = self.store.append(key, &messages, opts).await?;
        let stored = outcome.stored();
        self.write_through(key, &messages, &outcome.seqs, &outcome.meta);
        Ok(AppendReceipt {
            duplicates: messages.len() - stored,
            messages,
            stored,
        })
    }

    /// Puts freshly appended messages into the cache when they directly follow the
    /// cached tail; otherwise the next read fetches them (and whatever came between).
    fn write_through(
        &self,
        key: &SessionKey,
        messages: &[Message],
        seqs: &[Option<u64>],
        meta: &SessionMeta,
    ) {
        if self.config.cache_bytes == 0 {
            return;
        }
        let new: Vec<(u64, Message)> = seqs
            .iter()
            .zip(messages)
            .filter_map(|(s, m)| s.map(|s| (s, m.clone())))
            .collect();
        match self.cache.get(key) {
            Some(entry) => {
                {
                    let mut cached = lock(&entry);
                    if cached.created_at_ms != meta.created_at_ms {
                        drop(cached);
                        self.cache.invalidate(key);
                        return;
                    }
                    let contiguous: Vec<(u64, Message)> = new
                        .into_iter()
                        .scan(cached.last_seq, |tail, (seq, m)| {
                            (seq == *tail + 1).then(|| {
                                *tail = seq;
                                (seq, m)
                            })
                        })
                        .collect();
                    // Only the known-contiguous prefix goes in; `last_seq` must not
                    // jump past entries another writer slipped in between.
                    let tail = contiguous.last().map(|(s, _)| *s);
                    let meta_for_merge = SessionMeta {
                        last_seq: tail.unwrap_or(cached.last_seq),
                        ..meta.clone()
                    };
                    cached.merge(contiguous, &meta_for_merge);
                }
                // Re-insert so the cache re-weighs the entry.
                self.cache.insert(key.clone(), entry);
            }
            None => {
                // A brand-new session: these messages are its whole history.
                let complete = meta.trimmed_seq == 0
                    && meta.message_count as usize == new.len()
                    && new.first().is_some_and(|(s, _)| *s == 1);
                if complete {
                    let cached = Cached::from_load(LoadedSession {
                        meta: meta.clone(),
                        messages: new,
                        corrupt: Vec::new(),
                    });
                    self.cache.insert(key.clone(), Arc::new(Mutex::new(cached)));
                }
            }
        }
    }

    fn validate(&self, m: &Message) -> Result<()> {
        if m.content.trim().is_empty() {
            return Err(MemoryError::invalid("message content is empty"));
        }
        if m.content.len() > self.config.max_content_bytes {
            return Err(MemoryError::invalid(format!(
                "message content is {} bytes; the limit is {} bytes",
                m.content.len(),
                self.config.max_content_bytes
            )));
        }
        Ok(())
    }

    /// The session's messages, oldest first (empty when the session does not exist).
    ///
    /// Served from the cache after one round trip that fetches only entries newer
    /// than the cached tail; refreshes the TTL. Corrupt stored entries are skipped
    /// (and logged), never fatal.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn history(&self, key: &SessionKey) -> Result<History> {
        Ok(self.sync(key).await?.unwrap_or_default())
    }

    /// The most recent whole messages that fit `token_budget`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn context_window(
        &self,
        key: &SessionKey,
        token_budget: usize,
    ) -> Result<Vec<Message>> {
        let history = self.history(key).await?;
        Ok(context::select_recent(history.iter(), token_budget)
            .into_iter()
            .cloned()
            .collect())
    }

    /// The most recent turns that fit `token_budget`, rendered as an LLM-ready
    /// transcript (`User: ...` / `Assistant: ...`), oldest dropped first.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn format_history_as_context(
        &self,
        key: &SessionKey,
        token_budget: usize,
    ) -> Result<String> {
        let history = self.history(key).await?;
        let window = context::select_recent(history.iter(), token_budget);
        Ok(context::render(&window))
    }

    /// Brings the cached session up to date with the store; `None` when it is gone.
    async fn sync(&self, key: &SessionKey) -> Result<Option<History>> {
        let cached = if self.config.cache_bytes > 0 {
            self.cache.get(key)
        } else {
            None
        };
        let after = cached.as_ref().map_or(0, |e| lock(e).last_seq);
        let Some(loaded) = self.store.load(key, after, self.config.ttl).await? else {
            self.cache.invalidate(key);
            return Ok(None);
        };
        if let Some(entry) = cached {
            let same_session = lock(&entry).created_at_ms == loaded.meta.created_at_ms;
            if same_session {
                let history = {
                    let mut c = lock(&entry);
                    c.corrupt_skipped += loaded.corrupt.len();
                    c.merge(loaded.messages, &loaded.meta);
                    c.history()
                };
                self.cache.insert(key.clone(), entry);
                return Ok(Some(history));
            }
            // The session was deleted and recreated since we cached it: start over.
            self.cache.invalidate(key);
            let Some(full) = self.store.load(key, 0, self.config.ttl).await? else {
                return Ok(None);
            };
            return Ok(Some(self.cache_fresh(key, full)));
        }
        Ok(Some(self.cache_fresh(key, loaded)))
    }

    fn cache_fresh(&self, key: &SessionKey, loaded: LoadedSession) -> History {
        let cached = Cached::from_load(loaded);
        let history = cached.history();
        if self.config.cache_bytes > 0 {
            self.cache.insert(key.clone(), Arc::new(Mutex::new(cached)));
        }
        history
    }

    /// The user's sessions, most recent activity first.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn list_sessions(&self, user: &str) -> Result<Vec<SessionSummary>> {
        crate::message::validate_id("user", user)?;
        self.store.list(user).await
    }

    /// Deletes every key of the session and its cache entry. Returns whether it existed.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.cache.invalidate(key);
        let existed = self.store.delete(key).await?;
        self.cache.invalidate(key);
        Ok(existed)
    }

    /// Every session of `user` with its full history.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn export(&self, user: &str) -> Result<UserExport> {
        let summaries = self.list_sessions(user).await?;
        let mut sessions = Vec::with_capacity(summaries.len());
        for s in summaries {
            let key = SessionKey::new(user, s.session.as_str())?;
            // Exporting reads without refreshing TTLs through the cache's sliding window? No:
            // an export is a deliberate use of the data, so it counts as a read.
            let Some(loaded) = self.store.load(&key, 0, self.config.ttl).await? else {
                continue;
            };
            sessions.push(SessionExport {
                session: s.session,
                created_at: millis_to_datetime(loaded.meta.created_at_ms),
                updated_at: millis_to_datetime(loaded.meta.updated_at_ms),
                messages: loaded.messages.into_iter().map(|(_, m)| m).collect(),
            });
        }
        Ok(UserExport {
            user: user.to_string(),
            exported_at: Utc::now(),
            store: self.store.describe(),
            sessions,
        })
    }

    /// The kind of store behind this manager.
    pub fn store_kind(&self) -> StoreKind {
        self.store.kind()
    }
}
