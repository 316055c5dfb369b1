//! Reading a session: coherent cached reads, full rebuilds, and degraded reads from
//! the cache and the journal while the store is unreachable.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::Cached;
use super::{lock, Entry, History, SessionManager};
use crate::context;
use crate::error::Result;
use crate::message::{Message, SessionKey};
use crate::store::LoadedSession;

impl SessionManager {
    /// The session's messages in conversation order (empty when it does not exist).
    ///
    /// Served from the cache without a round trip while the store vouches that the
    /// session did not change since this process last read or wrote it (Redis with
    /// client-side caching); otherwise after one round trip that fetches only entries
    /// newer than the cached tail. A read that asks the store refreshes the TTL, and one
    /// is made at least every tenth of the TTL. Corrupt stored entries are skipped (and
    /// logged), never fatal. With a journal and the store unreachable, serves the cache
    /// and the journal, flagging a history this process had not seen as partial.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached and there is no journal.
    pub async fn history(&self, key: &SessionKey) -> Result<History> {
        self.sync(key, true).await
    }

    /// The session's messages, always confirmed with the store (one round trip that
    /// fetches only what is newer than the cached tail), so a write another server got
    /// acknowledged an instant ago is there for certain. For people looking at a
    /// conversation (API listing, `sessions show`); chat turns use
    /// [`SessionManager::history`].
    ///
    /// # Errors
    /// As [`SessionManager::history`].
    pub async fn history_confirmed(&self, key: &SessionKey) -> Result<History> {
        self.sync(key, false).await
    }

    /// The most recent whole messages that fit `token_budget`, oldest first.
    ///
    /// # Errors
    /// As [`SessionManager::history`].
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
    /// As [`SessionManager::history`].
    pub async fn format_history_as_context(
        &self,
        key: &SessionKey,
        token_budget: usize,
    ) -> Result<String> {
        let history = self.history(key).await?;
        let window = context::select_recent(history.iter(), token_budget);
        Ok(context::render(&window))
    }

    /// Brings the cached session up to date with the store; with `may_vouch`, a copy
    /// the store vouches for is served without asking it.
    async fn sync(&self, key: &SessionKey, may_vouch: bool) -> Result<History> {
        if self.pending_for(key) > 0 {
            // Put this session's journaled messages in the store before reading it.
            self.replay_session_if_idle(key).await;
        }
        let cached = if self.inner.config.cache_bytes > 0 {
            self.inner.cache.get(key)
        } else {
            None
        };
        if let Some(entry) = cached.as_ref().filter(|_| may_vouch) {
            if let Some(history) = self.current_copy(key, entry).await {
                self.inner.reads.cache.fetch_add(1, Ordering::Relaxed);
                return Ok(history);
            }
        }
        let clean_tail = cached.as_ref().and_then(|e| {
            let c = lock(e);
            c.is_clean().then_some(c.last_seq)
        });
        let loaded = match self
            .call(|| {
                self.inner
                    .store
                    .load(key, clean_tail.unwrap_or(0), self.inner.config.ttl)
            })
            .await
        {
            Ok(loaded) => loaded,
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                self.inner.reads.degraded.fetch_add(1, Ordering::Relaxed);
                return self.degraded_read(key).await;
            }
            Err(e) => return Err(e),
        };
        self.inner.reads.store.fetch_add(1, Ordering::Relaxed);
        let Some(loaded) = loaded else {
            self.inner.cache.invalidate(key);
            if self.pending_for(key) > 0 {
                return self.rebuild(key, None).await;
            }
            return Ok(History::default());
        };
        if let (Some(entry), Some(_)) = (&cached, clean_tail) {
            let same_session = lock(entry).created_at_ms == loaded.meta.created_at_ms;
            if same_session {
                let history = {
                    let mut c = lock(entry);
                    c.corrupt_skipped += loaded.corrupt.len();
                    c.merge(loaded.messages, &loaded.meta);
                    c.current_as_of = loaded.stamp;
                    c.touched = Instant::now();
                    History {
                        messages: c.snapshot(),
                        corrupt_skipped: c.corrupt_skipped,
                        partial: false,
                    }
                };
                self.inner.cache.insert(key.clone(), Arc::clone(entry));
                return Ok(history);
            }
            // Deleted and recreated since we cached it: start over from a full load.
            self.inner.cache.invalidate(key);
            let full = self
                .call(|| self.inner.store.load(key, 0, self.inner.config.ttl))
                .await?;
            return self.rebuild(key, full).await;
        }
        self.rebuild(key, Some(loaded)).await
    }

    /// The cached copy, when the store vouches that it is current and its TTL was
    /// refreshed recently enough; `None` when the store must be asked.
    async fn current_copy(&self, key: &SessionKey, entry: &Entry) -> Option<History> {
        let ttl = self.inner.config.ttl.secs;
        let current = |c: &Cached| {
            c.is_clean()
                && c.current_as_of
                    .is_some_and(|stamp| self.inner.store.unchanged_since(key, stamp))
                && (ttl == 0 || c.touched.elapsed() < Duration::from_secs(ttl) / 10)
        };
        if !current(&lock(entry)) {
            return None;
        }
        // Redis sends the invalidation for another server's write before it acknowledges
        // that write; yielding once lets the connection read one that is already in its
        // socket before the copy is trusted.
        tokio::task::yield_now().await;
        let c = lock(entry);
        current(&c).then(|| History {
            messages: c.snapshot(),
            corrupt_skipped: c.corrupt_skipped,
            partial: false,
        })
    }

    /// Caches a session from a full load plus whatever of it is still only journaled.
    async fn rebuild(&self, key: &SessionKey, full: Option<LoadedSession>) -> Result<History> {
        let journaled = match (&self.inner.journal, self.pending_for(key)) {
            (Some(journal), n) if n > 0 => journal.messages(key).await?,
            _ => Vec::new(),
        };
        let mut cached = match full {
            Some(loaded) => Cached::from_load(loaded),
            None if journaled.is_empty() => return Ok(History::default()),
            None => Cached::from_journal(Vec::new()),
        };
        if !journaled.is_empty() {
            let stored: std::collections::HashSet<_> =
                cached.snapshot().iter().map(|m| m.id).collect();
            cached.add_unsynced(
                journaled
                    .into_iter()
                    .filter(|m| !stored.contains(&m.id))
                    .collect(),
            );
        }
        let history = History {
            messages: cached.snapshot(),
            corrupt_skipped: cached.corrupt_skipped,
            partial: cached.partial,
        };
        if self.inner.config.cache_bytes > 0 {
            self.inner
                .cache
                .insert(key.clone(), Arc::new(Mutex::new(cached)));
        }
        Ok(history)
    }

    /// What this process knows of a session while the store is unreachable.
    pub(super) async fn degraded_read(&self, key: &SessionKey) -> Result<History> {
        if let Some(entry) = self.inner.cache.get(key) {
            let c = lock(&entry);
            return Ok(History {
                messages: c.snapshot(),
                corrupt_skipped: c.corrupt_skipped,
                partial: c.partial,
            });
        }
        let journaled = match &self.inner.journal {
            Some(journal) => journal.messages(key).await?,
            None => Vec::new(),
        };
        if journaled.is_empty() {
            return Ok(History {
                partial: true,
                ..History::default()
            });
        }
        let cached = Cached::from_journal(journaled);
        let history = History {
            messages: cached.snapshot(),
            corrupt_skipped: 0,
            partial: true,
        };
        if self.inner.config.cache_bytes > 0 {
            self.inner
                .cache
                .insert(key.clone(), Arc::new(Mutex::new(cached)));
        }
        Ok(history)
    }
}
