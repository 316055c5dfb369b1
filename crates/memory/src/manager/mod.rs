//! `SessionManager`: the public face of conversation memory.
//!
//! It sits in front of any [`SessionStore`] and adds:
//! - a bounded RAM cache of recent sessions, weighted by bytes, written through on
//!   every append; each cached session is its recent tail, bounded like a read
//!   ([`ManagerConfig::history_limit`]), so a turn's work and RAM do not grow with the
//!   conversation ([`cache`]);
//! - coherence across processes: a cached session is served as it is while the store
//!   vouches that nothing changed since this process last read or wrote it (Redis with
//!   RESP3 client-side caching, see `backend::redis::tracking`); otherwise the store is
//!   asked only for entries after the cached tail (one bounded round trip), so
//!   managers on several servers see each other's appends without reloading whole
//!   conversations ([`read`]);
//! - paging: what people look at (a session's messages, a user's sessions, an export)
//!   is read page by page, each page one bounded store call ([`admin`], [`export`]);
//! - the sliding TTL, re-applied to the whole session by appends and reads at least
//!   every tenth of the TTL (a session lives 90-100% of the TTL after its last use in
//!   a store that expires keys; durable stores ignore it);
//! - input limits (ids, empty or oversized content) checked before anything is written,
//!   and quotas (bytes per session, sessions and bytes per user) checked by the store
//!   atomically with the append ([`write`]);
//! - with a journal configured, degraded mode: store calls are bounded by a timeout and
//!   a [`breaker`]; appends the store cannot take go to the local journal and are
//!   replayed in the background when it answers again ([`replay`]); one log line per
//!   outage and a summary when it ends ([`episode`]);
//! - per-session stats, listing, delete and export;
//! - retention: deleting the sessions idle longer than the retention, and what this
//!   process keeps of them ([`retention`]).

mod admin;
mod breaker;
mod cache;
mod episode;
mod export;
mod read;
mod recall;
mod replay;
mod retention;
mod types;
mod write;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::Utc;

pub use self::breaker::{BreakerConfig, CircuitBreaker};
use self::cache::Cached;
use self::episode::Episodes;
pub use self::recall::RecallScope;
pub use self::retention::{retention_interval, RetentionPass, RETENTION_BATCH};
pub use self::types::*;
use crate::error::{MemoryError, Result};
use crate::journal::Journal;
use crate::message::SessionKey;
use crate::store::{SessionStore, StoreKind};

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
    /// Appends this process journaled, counted while `pending` is locked: a replay
    /// that read the journal before one of them must not forget what `pending` says of it.
    journaled_appends: AtomicU64,
    /// One replay at a time in this process.
    replay_lock: tokio::sync::Mutex<()>,
    reads: ReadCounters,
    /// Conversations the store found damaged (keys evicted) and repaired.
    repairs: AtomicU64,
    /// Sessions retention deleted through this manager.
    retention_deleted: AtomicU64,
    episodes: Episodes,
    /// The store's warnings and when they were read (they are cached for a while).
    warnings: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
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
    /// store is unreachable. The journal is opened for this store's identity: entries
    /// it holds for other stores are kept and reported, never replayed here. Starts the
    /// background replay task when called inside a Tokio runtime.
    ///
    /// # Errors
    /// `InvalidInput` when `config.journal` is `None`; `Unavailable` when the journal
    /// file cannot be opened.
    pub fn with_journal(store: Arc<dyn SessionStore>, config: ManagerConfig) -> Result<Self> {
        let Some(journal_config) = config.journal.clone() else {
            return Err(MemoryError::invalid("with_journal needs config.journal"));
        };
        let journal = Journal::open(journal_config, &store.identity())?;
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
                journaled_appends: AtomicU64::new(0),
                replay_lock: tokio::sync::Mutex::new(()),
                reads: ReadCounters::default(),
                repairs: AtomicU64::new(0),
                retention_deleted: AtomicU64::new(0),
                episodes: Episodes::default(),
                warnings: tokio::sync::Mutex::new(None),
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

    /// Counts a conversation the store found damaged and repaired.
    fn note_repair(&self, repaired: bool) {
        if repaired {
            self.inner.repairs.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Mode, pending journal entries (this store's, and other stores'), oldest pending
    /// age, last error, reads and repairs.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn status(&self) -> Result<MemoryStatus> {
        let (stats, other_stores) = match &self.inner.journal {
            Some(j) => (j.stats().await?, j.other_stores().await?),
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
            repairs: self.inner.repairs.load(Ordering::Relaxed),
            retention_deleted: self.inner.retention_deleted.load(Ordering::Relaxed),
            other_stores,
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
                self.inner.episodes.store_failed(&self.store_url(), e);
                *self.lock_last_error() = Some(e.to_string());
            }
            _ => {
                self.inner.breaker.success();
                if self.lock_last_error().take().is_some() {
                    self.inner.episodes.store_answered(&self.store_url());
                    self.inner.wake.notify_one();
                }
            }
        }
        outcome
    }
}
