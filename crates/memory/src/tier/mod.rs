//! Redis as the hot tier, a durable archive (SQLite or PostgreSQL) behind it.
//!
//! A conversation's life is not the Redis TTL. Redis holds the active conversations,
//! shared by every server and bounded by the TTL; the archive keeps every message; only
//! retention and people delete. [`TieredStore`] is one [`SessionStore`] over both:
//!
//! - **appends** are acknowledged by Redis exactly as without an archive (one round
//!   trip); the archive is written behind, in batches, off the request path
//!   ([`archiver`]), or before the acknowledgement with [`ArchiveMode::Sync`];
//! - **nothing expires unarchived**: a session holding messages the archive has not
//!   confirmed has no TTL in Redis (`append.lua`); the archiver gives it back once it
//!   has written them, so an archive outage of any length costs Redis memory, never a
//!   message;
//! - **a crash loses nothing**: each session's meta records the highest seq archived
//!   (`arch`); what is acknowledged but not archived is found again by a sweep of
//!   Redis, and written again idempotently (by message id);
//! - **rehydration**: a conversation Redis no longer has (expired, evicted, Redis
//!   replaced) is loaded from the archive on first use, put back with its seqs, and
//!   continues; restoring is one script that does nothing if the session exists, and
//!   it runs under the session's archive lock, so two servers store it once;
//! - **delete** takes the same lock, so it cannot interleave with an archiver that
//!   read the session before it (which would write it back) or a rehydration;
//! - **listing** merges both tiers, each conversation once, with its [`Tier`](crate::store::Tier);
//! - **search** is the archive's, after writing there what this process appended
//!   and has not archived yet ([`search`]).

mod archiver;
mod config;
mod list;
mod search;

pub use self::config::{open_tiered, ArchiveMode, TierConfig};

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::archiver::Shared;
use crate::backend::redis::RedisStore;
use crate::error::{MemoryError, Result};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};
use crate::store::{
    AppendOptions, AppendOutcome, ArchiveStatus, Durability, LoadedSession, SessionMeta,
    SessionPage, SessionStore, Stamp, StoreKind, Ttl,
};

/// What a rehydration found.
enum Rehydrated {
    /// Neither tier has the session (or the archive could not say).
    Missing,
    /// Redis has it (another server put it back, or it was there).
    Present,
    /// Put back into Redis from the archive: its newest entries.
    Restored(LoadedSession),
}

/// The answer to a `ReadFrom::Newest` read from entries just restored (the newest of
/// the session, bounded by the restore limit), bounded like a read of Redis: at most
/// `limit` (at least one entry), `more` when older entries after `after` are left out.
fn newest_of(restored: LoadedSession, from: ReadFrom, limit: ReadLimit, ttl: Ttl) -> LoadedSession {
    let after = match from {
        ReadFrom::Newest { after } | ReadFrom::After(after) => after,
    };
    let mut picked = Vec::new();
    let mut bytes = 0u64;
    let mut cut = false;
    for (seq, m) in restored.messages.into_iter().rev() {
        if seq <= after {
            break;
        }
        if !picked.is_empty() && (picked.len() >= limit.messages || bytes >= limit.bytes) {
            cut = true;
            break;
        }
        bytes += m.stored_bytes();
        picked.push((seq, m));
    }
    picked.reverse();
    let first = picked.first().map_or(u64::MAX, |(s, _)| *s);
    let floor = after.max(restored.meta.trimmed_seq);
    let mut meta = restored.meta;
    meta.ttl_remaining_secs = (ttl.secs > 0).then_some(ttl.secs);
    LoadedSession {
        meta,
        messages: picked,
        corrupt: restored.corrupt,
        stamp: None,
        more: cut || (restored.more && first > floor + 1),
        repaired: false,
    }
}

/// Redis in front, an archive behind (see the module docs).
pub struct TieredStore {
    hot: Arc<RedisStore>,
    archive: Arc<dyn SessionStore>,
    shared: Arc<Shared>,
    config: TierConfig,
}

impl std::fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredStore")
            .field("hot", &self.hot.describe())
            .field("archive", &self.archive.describe())
            .finish()
    }
}

impl TieredStore {
    /// `hot` in front of `archive`. Starts the archiver task (it needs a Tokio runtime;
    /// it stops when the store is dropped).
    ///
    /// # Errors
    /// `InvalidInput` when `archive` is not durable (`memory://`) or is a Redis store.
    pub fn new(
        hot: RedisStore,
        archive: Arc<dyn SessionStore>,
        config: TierConfig,
    ) -> Result<Self> {
        if !archive.kind().is_durable() || archive.kind() == StoreKind::Redis {
            return Err(MemoryError::invalid(format!(
                "an archive must be sqlite:// or postgres://, not {}",
                archive.describe()
            )));
        }
        let hot = Arc::new(hot.into_hot_tier());
        let shared = Arc::new(Shared::default());
        tokio::spawn(archiver::run(
            hot.clone(),
            archive.clone(),
            Arc::downgrade(&shared),
            config.clone(),
        ));
        Ok(TieredStore {
            hot,
            archive,
            shared,
            config,
        })
    }

    /// Waits until everything this process appended is archived, at most `within`.
    /// Returns how many sessions are still behind (0 = all archived); those stay in
    /// Redis without expiry, and the next sweep of any server archives them.
    pub async fn flush(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let behind = self.shared.behind();
            if behind == 0 || Instant::now() >= deadline {
                return behind;
            }
            self.shared.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets a conversation go from Redis as its TTL would, if the archive holds all of
    /// it (else it stays: `Ok(false)`). For operators making room in Redis, and for
    /// measuring rehydration.
    ///
    /// # Errors
    /// `Unavailable` when Redis cannot be reached.
    pub async fn evict(&self, key: &SessionKey) -> Result<bool> {
        let token = archiver::token();
        let claim = self
            .hot
            .claim(key, &token, self.config.lock, ReadLimit::new(1, 1))
            .await?;
        let crate::backend::redis::Claim::Ready(state) = claim else {
            return Ok(false);
        };
        let archived = state.arch >= state.seq;
        let result = if archived {
            self.hot.delete(key).await
        } else {
            Ok(false)
        };
        let _ = self.hot.unlock(key, &token).await;
        result
    }

    /// The archive behind the hot tier.
    pub fn archive(&self) -> &Arc<dyn SessionStore> {
        &self.archive
    }

    /// Takes the session's archive lock, waiting for another holder at most the lock's
    /// lifetime (a holder that died frees it then).
    async fn lock(&self, key: &SessionKey) -> Result<String> {
        let token = archiver::token();
        let deadline = Instant::now() + self.config.lock + Duration::from_secs(1);
        loop {
            if self.hot.try_lock(key, &token, self.config.lock).await? {
                return Ok(token);
            }
            if Instant::now() >= deadline {
                return Err(MemoryError::Unavailable {
                    store: self.hot.describe(),
                    reason: format!("the archive lock of {key} stayed taken"),
                });
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Runs `work` holding the session's archive lock, and releases it after.
    async fn locked<T>(
        &self,
        key: &SessionKey,
        work: impl AsyncFnOnce() -> Result<T>,
    ) -> Result<T> {
        let token = self.lock(key).await?;
        let result = work().await;
        let _ = self.hot.unlock(key, &token).await;
        result
    }

    /// Puts the conversation back into Redis from the archive if Redis lacks it.
    /// Returns whether the session exists now (in Redis).
    async fn rehydrate(&self, key: &SessionKey) -> Result<bool> {
        Ok(!matches!(
            self.rehydrate_with(key).await?,
            Rehydrated::Missing
        ))
    }

    /// [`TieredStore::rehydrate`], with what was restored.
    async fn rehydrate_with(&self, key: &SessionKey) -> Result<Rehydrated> {
        self.locked(key, async || {
            if self.hot.meta(key).await?.is_some() {
                return Ok(Rehydrated::Present);
            }
            let from = ReadFrom::Newest { after: 0 };
            let loaded = self
                .archive
                .load(key, from, self.config.restore_limit, Ttl::NEVER)
                .await;
            let loaded = match loaded {
                Ok(Some(loaded)) => loaded,
                Ok(None) => return Ok(Rehydrated::Missing),
                // The archive cannot say: the conversation starts (or goes on) in Redis
                // alone rather than the turn failing. Nothing is lost: its messages are
                // archived after whatever the archive holds, and the next rehydration
                // shows both; until then the user sees only what Redis has.
                Err(e) if e.is_retryable() => {
                    tracing::warn!(session = %key, error = %e, "the archive cannot be read: going on without the conversation's archived part");
                    self.shared.set_down(Some(e.to_string()));
                    return Ok(Rehydrated::Missing);
                }
                Err(e) => return Err(e),
            };
            if !self.hot.restore(key, &loaded, self.config.ttl).await? {
                return Ok(Rehydrated::Present);
            }
            self.shared
                .rehydrations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(session = %key, messages = loaded.messages.len(), "loaded a conversation back from the archive");
            Ok(Rehydrated::Restored(loaded))
        })
        .await
    }

    /// After an append stored `stored` messages: the archiver's turn, or (sync mode)
    /// the archive written now.
    async fn after_append(&self, key: &SessionKey, stored: usize) -> Result<()> {
        if stored == 0 {
            return Ok(());
        }
        match self.config.mode {
            ArchiveMode::WriteBehind => {
                self.shared.note(key, stored as u64);
                Ok(())
            }
            ArchiveMode::Sync => {
                let done = archiver::archive_now(
                    &self.hot,
                    self.archive.as_ref(),
                    &self.shared,
                    &self.config,
                    key,
                )
                .await;
                if done.is_err() {
                    // The sweep or the next append writes it; the caller learns now.
                    self.shared.note(key, stored as u64);
                }
                done
            }
        }
    }
}

#[async_trait]
impl SessionStore for TieredStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Redis
    }

    fn describe(&self) -> String {
        format!(
            "{} (archive: {})",
            self.hot.describe(),
            self.archive.describe()
        )
    }

    fn identity(&self) -> String {
        // Journal entries are appends to the hot tier; they stay replayable when an
        // archive is added or changed.
        self.hot.identity()
    }

    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        let outcome = match self
            .hot
            .append_or_missing(key, messages, opts, false)
            .await?
        {
            Some(outcome) => outcome,
            None => {
                self.rehydrate(key).await?;
                let again = self
                    .hot
                    .append_or_missing(key, messages, opts, true)
                    .await?;
                again.ok_or_else(|| MemoryError::NotFound(key.to_string()))?
            }
        };
        self.after_append(key, outcome.stored()).await?;
        Ok(outcome)
    }

    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        let hot = match self.hot.load(key, from, limit, ttl).await? {
            Some(hot) => hot,
            None => match self.rehydrate_with(key).await? {
                Rehydrated::Missing => return Ok(None),
                // What was just put back answers a read of the newest entries (a
                // chat turn's) without reading it from Redis again.
                Rehydrated::Restored(restored) if matches!(from, ReadFrom::Newest { .. }) => {
                    return Ok(Some(newest_of(restored, from, limit, self.config.ttl)));
                }
                _ => match self.hot.load(key, from, limit, ttl).await? {
                    Some(hot) => hot,
                    None => return Ok(None),
                },
            },
        };
        // Paging back below what Redis holds (a rehydration puts back only the newest
        // entries): those pages come from the archive.
        let floor = hot.meta.trimmed_seq;
        if let ReadFrom::After(after) = from {
            if after < floor {
                if let Some(old) = self.archive.load(key, from, limit, Ttl::NEVER).await? {
                    let messages: Vec<_> = old
                        .messages
                        .into_iter()
                        .filter(|(s, _)| *s <= floor)
                        .collect();
                    if !messages.is_empty() {
                        return Ok(Some(LoadedSession {
                            meta: hot.meta,
                            messages,
                            corrupt: old.corrupt,
                            stamp: None,
                            more: true,
                            repaired: hot.repaired,
                        }));
                    }
                }
            }
        }
        Ok(Some(hot))
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        match self.hot.meta(key).await? {
            Some(meta) => Ok(Some(meta)),
            None => self.archive.meta(key).await,
        }
    }

    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        list::merged_page(&self.hot, self.archive.as_ref(), user, after, limit).await
    }

    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        let in_hot = self.hot.set_title(key, title).await?;
        // The archiver copies a given title with the messages; a conversation already
        // archived gets it now.
        let in_archive = self.archive.set_title(key, title).await?;
        Ok(in_hot || in_archive)
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.locked(key, async || {
            let in_hot = self.hot.delete(key).await?;
            self.shared.forget(key);
            let in_archive = self.archive.delete(key).await?;
            Ok(in_hot || in_archive)
        })
        .await
    }

    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let mut users = self.archive.users(after, limit).await?;
        if let Ok(hot) = self.hot.users(after, limit).await {
            users.extend(hot);
            users.sort();
            users.dedup();
            users.truncate(limit.max(1));
        }
        Ok(users)
    }

    async fn purge_idle(&self, before_ms: i64, limit: usize) -> Result<Vec<SessionKey>> {
        let purged = self.archive.purge_idle(before_ms, limit).await?;
        for key in &purged {
            match self.hot.meta(key).await? {
                Some(meta) if meta.updated_at_ms < before_ms => {
                    self.hot.delete(key).await?;
                    self.shared.forget(key);
                }
                // Used since its archive copy was written (that copy lags a little):
                // it stays, and is archived again from the start.
                Some(_) if self.hot.rearchive(key).await? => self.shared.note(key, 0),
                _ => {}
            }
        }
        Ok(purged)
    }

    fn searches(&self) -> bool {
        true
    }

    async fn search(&self, user: &str, query: &SearchQuery) -> Result<SearchPage> {
        search::search(self, user, query).await
    }

    async fn ping(&self) -> Result<()> {
        self.hot.ping().await
    }

    fn unchanged_since(&self, key: &SessionKey, stamp: Stamp) -> bool {
        self.hot.unchanged_since(key, stamp)
    }

    async fn warnings(&self) -> Vec<String> {
        let mut warnings = self.hot.warnings().await;
        if let Some(why) = self.shared.status().last_error {
            warnings.push(format!(
                "the archive {} is not answering ({why}); conversations it has not \
                 confirmed stay in Redis without expiry until it does",
                self.archive.describe()
            ));
        }
        warnings
    }

    async fn durability(&self) -> Durability {
        self.hot.durability().await
    }

    fn keeps_idle_sessions(&self) -> bool {
        true
    }

    fn archive_status(&self) -> Option<ArchiveStatus> {
        Some(self.shared.status())
    }
}
