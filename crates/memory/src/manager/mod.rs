//! `SessionManager`: the public face of conversation memory.
//!
//! It sits in front of any [`SessionStore`] and adds:
//! - a bounded RAM cache of recent sessions, weighted by bytes, written through on
//!   every append ([`cache`]);
//! - coherence across processes: a cached session is served as it is while the store
//!   vouches that nothing changed since this process last read or wrote it (Redis with
//!   RESP3 client-side caching, see `backend::redis::tracking`); otherwise the store is
//!   asked only for entries after the cached tail (one round trip), so managers on
//!   several servers see each other's appends without reloading whole conversations;
//! - the sliding TTL, re-applied to the whole session by appends and reads at least
//!   every tenth of the TTL (a session lives 90-100% of the TTL after its last use);
//! - input limits (ids, empty or oversized content) checked before anything is written;
//! - with a journal configured, degraded mode: store calls are bounded by a timeout and
//!   a [`breaker`]; appends the store cannot take go to the local journal and are
//!   replayed in the background when it answers again ([`replay`]);
//! - per-session stats, listing, delete and export.

mod breaker;
mod cache;
mod read;
mod replay;
mod types;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;

pub use self::breaker::{BreakerConfig, CircuitBreaker};
use self::cache::Cached;
pub use self::types::*;
use crate::error::{MemoryError, Result};
use crate::journal::Journal;
use crate::message::{millis_to_datetime, Message, Role, SessionKey, SourceRef};
use crate::store::{
    AppendOptions, AppendOutcome, LoadedSession, SessionMeta, SessionStore, SessionSummary,
    StoreKind,
};

type Entry = Arc<Mutex<Cached>>;

/// How history reads were served, since the manager started.
#[derive(Default)]
struct ReadCounters {
    /// From the cache, the store vouching that nothing changed (no round trip).
    cache: AtomicU64,
    /// After asking the store (one round trip).
    store: AtomicU64,
    /// From the cache and the journal while the store was unreachable.
    degraded: AtomicU64,
}

fn lock(entry: &Entry) -> std::sync::MutexGuard<'_, Cached> {
    entry.lock().unwrap_or_else(|e| e.into_inner())
}

/// Conversation memory: a RAM cache in front of a durable, possibly shared, store.
///
/// Create one per process and clone it freely (clones share everything); all methods
/// take `&self` and are safe to call from many tasks. With a journal configured, a
/// background task replays journaled appends; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Arc<dyn SessionStore>,
    cache: moka::sync::Cache<SessionKey, Entry>,
    config: ManagerConfig,
    journal: Option<Journal>,
    breaker: CircuitBreaker,
    last_error: Mutex<Option<String>>,
    /// Sessions known to have entries in the journal, and how many.
    pending: Mutex<HashMap<SessionKey, u64>>,
    /// One replay at a time in this process.
    replay_lock: tokio::sync::Mutex<()>,
    reads: ReadCounters,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("store", &self.inner.store.describe())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl SessionManager {
    /// A manager over `store`, without a journal: store failures reach the caller.
    ///
    /// Use [`SessionManager::with_journal`] to keep answering while the store is down.
    pub fn new(store: Arc<dyn SessionStore>, config: ManagerConfig) -> Self {
        Self::build(store, config, None)
    }

    /// A manager whose appends fall back to the journal in `config.journal` while the
    /// store is unreachable. Starts the background replay task when called inside a
    /// Tokio runtime.
    ///
    /// # Errors
    /// `InvalidInput` when `config.journal` is `None`; `Unavailable` when the journal
    /// file cannot be opened.
    pub fn with_journal(store: Arc<dyn SessionStore>, config: ManagerConfig) -> Result<Self> {
        let Some(journal_config) = config.journal.clone() else {
            return Err(MemoryError::invalid("with_journal needs config.journal"));
        };
        let journal = Journal::open(journal_config)?;
        // Know at once which sessions have journaled messages, so that no read or append
        // treats such a session as complete before they are replayed.
        let pending = journal.pending_sessions_blocking()?;
        let background = config.background_replay;
        let manager = Self::build(store, config, Some(journal));
        manager
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(pending);
        if background {
            manager.spawn_replay_task();
        }
        Ok(manager)
    }

    fn build(
        store: Arc<dyn SessionStore>,
        config: ManagerConfig,
        journal: Option<Journal>,
    ) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(config.cache_bytes)
            .weigher(|_k: &SessionKey, v: &Entry| -> u32 {
                lock(v).ram_bytes.min(u32::MAX as u64) as u32
            })
            .build();
        SessionManager {
            inner: Arc::new(Inner {
                store,
                cache,
                breaker: CircuitBreaker::new(config.breaker),
                config,
                journal,
                last_error: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
                replay_lock: tokio::sync::Mutex::new(()),
                reads: ReadCounters::default(),
                wake: Arc::new(tokio::sync::Notify::new()),
            }),
        }
    }

    /// The store behind this manager.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// The store's redacted URL.
    pub fn store_url(&self) -> String {
        self.inner.store.describe()
    }

    /// The kind of store behind this manager.
    pub fn store_kind(&self) -> StoreKind {
        self.inner.store.kind()
    }

    /// The local journal, when one is configured.
    pub fn journal(&self) -> Option<&Journal> {
        self.inner.journal.as_ref()
    }

    /// Normal, or degraded since the last store call failed.
    pub fn mode(&self) -> Mode {
        if self.lock_last_error().is_some() {
            Mode::Degraded
        } else {
            Mode::Normal
        }
    }

    fn lock_last_error(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.inner
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn pending_for(&self, key: &SessionKey) -> u64 {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Mode, pending journal entries, oldest pending age and last error.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn status(&self) -> Result<MemoryStatus> {
        let stats = match &self.inner.journal {
            Some(j) => j.stats().await?,
            None => Default::default(),
        };
        let now = Utc::now().timestamp_millis();
        Ok(MemoryStatus {
            mode: self.mode(),
            store: self.store_url(),
            pending_sync: stats.entries,
            pending_bytes: stats.bytes,
            oldest_pending_secs: stats.oldest_ms.map(|t| ((now - t).max(0) / 1000) as u64),
            last_error: self.lock_last_error().clone(),
            journal: self.inner.journal.as_ref().map(|j| j.path().to_path_buf()),
            reads: ReadStats {
                from_cache: self.inner.reads.cache.load(Ordering::Relaxed),
                from_store: self.inner.reads.store.load(Ordering::Relaxed),
                degraded: self.inner.reads.degraded.load(Ordering::Relaxed),
            },
        })
    }

    /// Runs a store call, bounded by the timeout and the breaker when a journal backs
    /// the store up; records the outcome for the mode and the breaker.
    ///
    /// A call that fails at once while the store was healthy (typically a connection the
    /// network dropped, which the client re-establishes on the next command) is tried a
    /// second time within the same time budget, so one blip does not turn into a
    /// degraded read. Every store call is idempotent, so the retry is safe.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if self.inner.journal.is_none() {
            return f().await;
        }
        if !self.inner.breaker.allow() {
            let last = self.lock_last_error().clone().unwrap_or_default();
            return Err(MemoryError::Unavailable {
                store: self.store_url(),
                reason: format!("not calling it for now after repeated failures ({last})"),
            });
        }
        let budget = self.inner.config.store_timeout;
        let deadline = tokio::time::Instant::now() + budget;
        let timed_out = || MemoryError::Unavailable {
            store: self.store_url(),
            reason: format!("no answer within {budget:?}"),
        };
        let mut outcome = tokio::time::timeout_at(deadline, f())
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        let healthy = self.lock_last_error().is_none();
        if healthy
            && matches!(&outcome, Err(e) if e.is_retryable())
            && tokio::time::Instant::now() + budget / 4 < deadline
        {
            outcome = tokio::time::timeout_at(deadline, f())
                .await
                .unwrap_or_else(|_| Err(timed_out()));
        }
        match &outcome {
            Err(e) if e.is_retryable() => {
                self.inner.breaker.failure();
                let mut last = self.lock_last_error();
                if last.is_none() {
                    tracing::warn!(store = %self.store_url(), error = %e, "store unreachable: degraded mode, appends go to the local journal");
                }
                *last = Some(e.to_string());
            }
            _ => {
                self.inner.breaker.success();
                let mut last = self.lock_last_error();
                if last.take().is_some() {
                    tracing::info!(store = %self.store_url(), "store answers again: normal mode");
                    self.inner.wake.notify_one();
                }
            }
        }
        outcome
    }

    /// Creates an empty session if it does not exist, and (re)applies the TTL.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached.
    pub async fn create_session(&self, key: &SessionKey) -> Result<SessionStats> {
        let meta = self
            .call(|| self.inner.store.create(key, self.inner.config.ttl))
            .await?;
        Ok(self.stats_from(key, &meta))
    }

    /// The session's stats, or `None` when it does not exist. Does not refresh the TTL.
    ///
    /// # Errors
    /// As [`SessionManager::stats`].
    pub async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        self.stats(key).await
    }

    /// Message count, bytes, TTL remaining, timestamps, store, mode and pending
    /// journal entries of a session; `None` when it does not exist. Looking does not
    /// refresh the TTL. While degraded, figures come from the cache and the journal.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached and there is no journal.
    pub async fn stats(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        match self.call(|| self.inner.store.meta(key)).await {
            Ok(Some(meta)) => Ok(Some(self.stats_from(key, &meta))),
            Ok(None) if self.pending_for(key) == 0 => Ok(None),
            Ok(None) => self.degraded_stats(key).await,
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                self.degraded_stats(key).await
            }
            Err(e) => Err(e),
        }
    }

    async fn degraded_stats(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        let history = self.degraded_read(key).await?;
        let (Some(first), Some(last)) = (history.iter().next(), history.last()) else {
            return Ok(None);
        };
        Ok(Some(SessionStats {
            user: key.user().to_string(),
            session: key.session().to_string(),
            message_count: history.len() as u64,
            bytes: history.iter().map(Message::stored_bytes).sum(),
            ttl_remaining_secs: None,
            created_at: first.created_at,
            updated_at: last.created_at,
            store: self.store_url(),
            mode: self.mode(),
            pending_sync: self.pending_for(key),
        }))
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
            store: self.store_url(),
            mode: self.mode(),
            pending_sync: self.pending_for(key),
        }
    }

    /// Appends one new message and returns it.
    ///
    /// # Errors
    /// As [`SessionManager::append`].
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
    /// failed or uncertain append with the same messages never doubles them. With a
    /// journal, an append the store cannot take is written to the journal instead and
    /// succeeds with `journaled: true`.
    ///
    /// # Errors
    /// `InvalidInput` (nothing written) when any message is empty or over the content
    /// limit; `Unavailable` when the store cannot be reached and there is no journal,
    /// or the journal is full.
    pub async fn append(&self, key: &SessionKey, messages: Vec<Message>) -> Result<AppendReceipt> {
        for m in &messages {
            self.validate(m)?;
        }
        if messages.is_empty() {
            return Ok(AppendReceipt {
                messages,
                stored: 0,
                duplicates: 0,
                journaled: false,
            });
        }
        let opts = self.append_options(key);
        match self
            .call(|| self.inner.store.append(key, &messages, opts))
            .await
        {
            Ok(outcome) => {
                let stored = outcome.stored();
                self.write_through(key, &messages, &outcome, opts.refresh_ttl);
                Ok(AppendReceipt {
                    duplicates: messages.len() - stored,
                    messages,
                    stored,
                    journaled: false,
                })
            }
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                self.append_to_journal(key, messages).await
            }
            Err(e) => Err(e),
        }
    }

    /// Options for an append to `key`: the TTL is re-applied when this process has not
    /// done so for the session within the last tenth of the TTL.
    fn append_options(&self, key: &SessionKey) -> AppendOptions {
        let ttl = self.inner.config.ttl;
        let refresh_ttl = match self.inner.cache.get(key) {
            Some(entry) => {
                ttl.secs > 0 && lock(&entry).touched.elapsed() >= Duration::from_secs(ttl.secs) / 10
            }
            None => true,
        };
        AppendOptions {
            ttl,
            max_messages: self.inner.config.max_messages,
            refresh_ttl,
        }
    }

    async fn append_to_journal(
        &self,
        key: &SessionKey,
        messages: Vec<Message>,
    ) -> Result<AppendReceipt> {
        let Some(journal) = &self.inner.journal else {
            return Err(MemoryError::invalid("no journal configured"));
        };
        journal.append(key, &messages).await?;
        *self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert(0) += messages.len() as u64;
        if self.inner.config.cache_bytes > 0 {
            match self.inner.cache.get(key) {
                Some(entry) => {
                    lock(&entry).add_unsynced(messages.clone());
                    self.inner.cache.insert(key.clone(), entry);
                }
                None => {
                    // What this process knows of the session is what the journal holds.
                    let known = journal.messages(key).await?;
                    let cached = Cached::from_journal(known);
                    self.inner
                        .cache
                        .insert(key.clone(), Arc::new(Mutex::new(cached)));
                }
            }
        }
        self.inner.wake.notify_one();
        Ok(AppendReceipt {
            stored: messages.len(),
            messages,
            duplicates: 0,
            journaled: true,
        })
    }

    /// Puts freshly appended messages into the cache when they directly follow the
    /// cached tail; otherwise the next read fetches them (and whatever came between).
    fn write_through(
        &self,
        key: &SessionKey,
        messages: &[Message],
        outcome: &AppendOutcome,
        refreshed: bool,
    ) {
        if self.inner.config.cache_bytes == 0 {
            return;
        }
        let (seqs, meta, stamp) = (&outcome.seqs, &outcome.meta, outcome.stamp);
        let new: Vec<(u64, Message)> = seqs
            .iter()
            .zip(messages)
            .filter_map(|(s, m)| s.map(|s| (s, m.clone())))
            .collect();
        match self.inner.cache.get(key) {
            Some(entry) => {
                {
                    let mut cached = lock(&entry);
                    if cached.created_at_ms != meta.created_at_ms || !cached.is_clean() {
                        // A recreated session, or one holding journaled messages: the
                        // next read rebuilds it from the store.
                        drop(cached);
                        self.inner.cache.invalidate(key);
                        return;
                    }
                    let mut tail = cached.last_seq;
                    let contiguous: Vec<(u64, Message)> = new
                        .into_iter()
                        .take_while(|(seq, _)| {
                            let next = *seq == tail + 1;
                            if next {
                                tail = *seq;
                            }
                            next
                        })
                        .collect();
                    // `last_seq` must not jump past entries another writer slipped in.
                    let meta_for_merge = SessionMeta {
                        last_seq: tail,
                        ..meta.clone()
                    };
                    cached.merge(contiguous, &meta_for_merge);
                    // Holding every entry up to the store's last one, the copy is current
                    // as of this append; otherwise the next read fetches what it misses.
                    cached.current_as_of = stamp.filter(|_| tail == meta.last_seq);
                    if refreshed {
                        cached.touched = std::time::Instant::now();
                    }
                }
                // Re-insert so the cache re-weighs the entry.
                self.inner.cache.insert(key.clone(), entry);
            }
            None => {
                // A brand-new session: these messages are its whole history (unless the
                // journal still holds older ones for it).
                let complete = self.pending_for(key) == 0
                    && meta.trimmed_seq == 0
                    && meta.message_count as usize == new.len()
                    && new.first().is_some_and(|(s, _)| *s == 1);
                if complete {
                    let cached = Cached::from_load(LoadedSession {
                        meta: meta.clone(),
                        messages: new,
                        corrupt: Vec::new(),
                        stamp,
                    });
                    self.inner
                        .cache
                        .insert(key.clone(), Arc::new(Mutex::new(cached)));
                }
            }
        }
    }

    /// Checks a message against the limits an append enforces (empty or oversized
    /// content), without writing anything.
    ///
    /// # Errors
    /// `InvalidInput` saying what is wrong.
    pub fn validate(&self, m: &Message) -> Result<()> {
        if m.content.trim().is_empty() {
            return Err(MemoryError::invalid("message content is empty"));
        }
        let limit = self.inner.config.max_content_bytes;
        if m.content.len() > limit {
            return Err(MemoryError::invalid(format!(
                "message content is {} bytes; the limit is {limit} bytes",
                m.content.len()
            )));
        }
        Ok(())
    }

    /// The user's sessions, most recent activity first.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn list_sessions(&self, user: &str) -> Result<Vec<SessionSummary>> {
        crate::message::validate_id("user", user)?;
        self.call(|| self.inner.store.list(user)).await
    }

    /// Deletes every key of the session, its journaled messages and its cache entry.
    /// Returns whether it existed.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached (nothing is deleted then).
    pub async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.inner.cache.invalidate(key);
        let existed = self.call(|| self.inner.store.delete(key)).await?;
        let mut journaled = 0;
        if let Some(journal) = &self.inner.journal {
            journaled = journal.remove_session(key).await?;
            self.inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(key);
        }
        self.inner.cache.invalidate(key);
        Ok(existed || journaled > 0)
    }

    /// Erases every session of `user` from the store, the journal and the cache.
    /// Returns how many sessions were deleted.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be
    /// reached (sessions deleted before the failure stay deleted).
    pub async fn delete_user(&self, user: &str) -> Result<usize> {
        let mut keys: Vec<SessionKey> = self
            .list_sessions(user)
            .await?
            .into_iter()
            .map(|s| SessionKey::new(user, s.session.as_str()))
            .collect::<Result<_>>()?;
        if let Some(journal) = &self.inner.journal {
            for (key, _) in journal.pending_sessions().await? {
                if key.user() == user && !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        let mut deleted = 0;
        for key in &keys {
            if self.delete(key).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Every session of `user` with its full history, in conversation order.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn export(&self, user: &str) -> Result<UserExport> {
        if self.inner.journal.is_some() {
            // Best effort: whatever is still journaled should be in the export.
            let _ = self.replay_journal().await;
        }
        let summaries = self.list_sessions(user).await?;
        let mut sessions = Vec::with_capacity(summaries.len());
        for s in summaries {
            let key = SessionKey::new(user, s.session.as_str())?;
            // An export is a deliberate use of the data: it counts as a read.
            let Some(loaded) = self
                .call(|| self.inner.store.load(&key, 0, self.inner.config.ttl))
                .await?
            else {
                continue;
            };
            let mut messages: Vec<Message> = loaded.messages.into_iter().map(|(_, m)| m).collect();
            messages.sort_by_key(|m| (m.created_at, m.id));
            sessions.push(SessionExport {
                session: s.session,
                created_at: millis_to_datetime(loaded.meta.created_at_ms),
                updated_at: millis_to_datetime(loaded.meta.updated_at_ms),
                messages,
            });
        }
        Ok(UserExport {
            user: user.to_string(),
            exported_at: Utc::now(),
            store: self.store_url(),
            sessions,
        })
    }
}
