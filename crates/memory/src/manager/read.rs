//! Reading a session: coherent cached reads of its recent tail, pages of the whole
//! conversation, and degraded reads from the cache and the journal while the store is
//! unreachable.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::Cached;
use super::{lock, Entry, History, MessagePage, SessionManager};
use crate::context;
use crate::error::{MemoryError, Result};
use crate::limits::{PageCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::store::LoadedSession;

impl SessionManager {
    /// The session's recent messages in conversation order (empty when it does not
    /// exist): its tail within [`ManagerConfig::history_limit`](super::ManagerConfig::history_limit),
    /// which is what a chat turn needs (`has_earlier` says the conversation goes further
    /// back; [`SessionManager::page`] reads all of it).
    ///
    /// Served from the cache without a round trip while the store vouches that the
    /// session did not change since this process last read or wrote it (Redis with
    /// client-side caching); otherwise after one bounded round trip that fetches only
    /// entries newer than the cached tail. A read that asks the store refreshes the
    /// TTL, and one is made at least every tenth of the TTL. Corrupt stored entries are
    /// skipped (and logged), never fatal. With a journal and the store unreachable,
    /// serves the cache and the journal, flagging a history this process had not seen
    /// as partial.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached and there is no journal.
    pub async fn history(&self, key: &SessionKey) -> Result<History> {
        self.sync(key, true).await
    }

    /// The session's recent messages, always confirmed with the store (one round trip
    /// that fetches only what is newer than the cached tail), so a write another server
    /// got acknowledged an instant ago is there for certain. Chat turns use
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

    /// One page of a session's messages, read from the store: the oldest ones after
    /// `after` (the `next_cursor` of the previous page; `None` = from the start), at
    /// most `limit.messages` and stopping once they reach `limit.bytes`. Within a page,
    /// messages are in conversation order; pages follow the store's order, which is the
    /// same except for a message replayed from a journal after an outage (it comes on
    /// the page where the store put it). `None` when the session does not exist.
    ///
    /// Messages still in the journal (a replay is busy, or did not get through) come at
    /// the end of the last page, not past its cursor (they are not stored yet); when
    /// they do not fit in it, `has_more` asks for one more page. That page is flagged
    /// `partial` when the journal holds more of them than one page.
    ///
    /// While the store is unreachable, the first page is what this process kept (its
    /// cache and the journal), flagged `partial`; a session it knows nothing about, or
    /// any later page, is `Unavailable`: never "does not exist".
    ///
    /// # Errors
    /// `Unavailable` as above, or when the store cannot be reached and there is no journal.
    pub async fn page(
        &self,
        key: &SessionKey,
        after: Option<PageCursor>,
        limit: ReadLimit,
    ) -> Result<Option<MessagePage>> {
        if self.pending_for(key) > 0 {
            self.replay_session_if_idle(key).await;
        }
        // Read before the store, as in `sync`: a message the replay moves meanwhile is
        // in one of the two.
        let journaled: Vec<Message> = match &self.inner.journal {
            Some(journal) if self.pending_for(key) > 0 => {
                let entries = journal.entries(key, limit).await?;
                entries.into_iter().map(|e| e.message).collect()
            }
            _ => Vec::new(),
        };
        let more_journaled = self.pending_for(key) > journaled.len() as u64;
        let from = ReadFrom::After(after.map_or(0, |c| c.0));
        let loaded = self
            .call(|| {
                self.inner
                    .store
                    .load(key, from, limit, self.inner.config.ttl)
            })
            .await;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                return self.degraded_page(key, after, e).await.map(Some);
            }
            Err(e) => return Err(e),
        };
        self.inner.reads.store.fetch_add(1, Ordering::Relaxed);
        let Some(loaded) = loaded else {
            if self.pending_for(key) > 0 && after.is_none() {
                // Only journaled so far (the replay did not get through): what we kept.
                let history = self.degraded_read(key).await?;
                return Ok(Some(partial_page(&history)));
            }
            return Ok(None);
        };
        self.note_repair(loaded.repaired);
        let last = loaded.last_seq_read();
        let corrupt_skipped = loaded.corrupt.len();
        let mut page = MessagePage {
            messages: loaded.messages.into_iter().map(|(_, m)| m).collect(),
            has_more: loaded.more,
            next_cursor: last.map(PageCursor).or(after),
            partial: false,
            corrupt_skipped,
        };
        if !page.has_more {
            end_with_journaled(&mut page, journaled, more_journaled, limit);
        }
        page.messages.sort_by_key(|m| (m.created_at, m.id));
        Ok(Some(page))
    }

    async fn degraded_page(
        &self,
        key: &SessionKey,
        after: Option<PageCursor>,
        error: MemoryError,
    ) -> Result<MessagePage> {
        if after.is_some() {
            return Err(error);
        }
        let history = self.degraded_read(key).await?;
        if history.is_empty() {
            return Err(error);
        }
        self.inner.reads.degraded.fetch_add(1, Ordering::Relaxed);
        self.inner.episodes.degraded_read();
        Ok(partial_page(&history))
    }

    /// Brings the cached session up to date with the store; with `may_vouch`, a copy
    /// the store vouches for is served without asking it.
    async fn sync(&self, key: &SessionKey, may_vouch: bool) -> Result<History> {
        if self.pending_for(key) > 0 {
            // Put this session's journaled messages in the store before reading it.
            self.replay_session_if_idle(key).await;
        }
        // What is still journaled, read before the store: a message leaves the journal
        // only after the store has it, so each one is in this snapshot or in the
        // store's reply, even while a replay moves it (read after, it could be in
        // neither).
        let journaled = self.journaled(key).await?;
        let cached = if self.inner.config.cache_bytes > 0 {
            self.inner.cache.get(key)
        } else {
            None
        };
        if let Some(entry) = cached
            .as_ref()
            .filter(|_| may_vouch && journaled.is_empty())
        {
            if let Some(history) = self.current_copy(key, entry).await {
                self.inner.reads.cache.fetch_add(1, Ordering::Relaxed);
                return Ok(history);
            }
        }
        let clean_tail = cached.as_ref().and_then(|e| {
            let c = lock(e);
            (c.is_clean() && journaled.is_empty()).then_some(c.last_seq)
        });
        let loaded = match self.load_tail(key, clean_tail.unwrap_or(0)).await {
            Ok(loaded) => loaded,
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                self.inner.reads.degraded.fetch_add(1, Ordering::Relaxed);
                self.inner.episodes.degraded_read();
                return self.degraded_read(key).await;
            }
            Err(e) => return Err(e),
        };
        self.inner.reads.store.fetch_add(1, Ordering::Relaxed);
        let Some(loaded) = loaded else {
            self.inner.cache.invalidate(key);
            return Ok(self.rebuild(key, None, journaled));
        };
        if let (Some(entry), Some(_)) = (&cached, clean_tail) {
            let same_session = lock(entry).created_at_ms == loaded.meta.created_at_ms;
            // More new entries than a read holds: they do not join the cached tail, so
            // the copy starts over from this read (the newest ones).
            if same_session && !loaded.more && !loaded.repaired {
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
                        earlier: c.earlier,
                    }
                };
                self.inner.cache.insert(key.clone(), Arc::clone(entry));
                return Ok(history);
            }
            self.inner.cache.invalidate(key);
            if same_session && !loaded.repaired {
                return Ok(self.rebuild(key, Some(loaded), journaled));
            }
            // Deleted and recreated (or repaired) since we cached it: start over.
            let fresh = self.load_tail(key, 0).await?;
            return Ok(self.rebuild(key, fresh, journaled));
        }
        Ok(self.rebuild(key, Some(loaded), journaled))
    }

    /// The session's most recent journaled messages (none when this process knows of
    /// none in the journal).
    async fn journaled(&self, key: &SessionKey) -> Result<Vec<Message>> {
        match &self.inner.journal {
            Some(journal) if self.pending_for(key) > 0 => {
                journal
                    .recent_messages(key, self.inner.config.history_limit)
                    .await
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The newest entries after `after`, within the history bound, refreshing the TTL.
    async fn load_tail(&self, key: &SessionKey, after: u64) -> Result<Option<LoadedSession>> {
        let loaded = self
            .call(|| {
                self.inner.store.load(
                    key,
                    ReadFrom::Newest { after },
                    self.inner.config.history_limit,
                    self.inner.config.ttl,
                )
            })
            .await?;
        if let Some(l) = &loaded {
            self.note_repair(l.repaired);
        }
        Ok(loaded)
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
            earlier: c.earlier,
        })
    }

    /// Caches a session from a read of its tail plus what of it was still only
    /// journaled just before that read.
    fn rebuild(
        &self,
        key: &SessionKey,
        tail: Option<LoadedSession>,
        journaled: Vec<Message>,
    ) -> History {
        let limit = self.inner.config.history_limit;
        let mut cached = match tail {
            Some(loaded) => Cached::from_load(loaded, limit),
            None if journaled.is_empty() => return History::default(),
            None => Cached::from_journal(Vec::new(), limit),
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
            earlier: cached.earlier,
        };
        if self.inner.config.cache_bytes > 0 {
            self.inner
                .cache
                .insert(key.clone(), Arc::new(Mutex::new(cached)));
        }
        history
    }

    /// What this process knows of a session while the store is unreachable.
    pub(super) async fn degraded_read(&self, key: &SessionKey) -> Result<History> {
        if let Some(entry) = self.inner.cache.get(key) {
            let c = lock(&entry);
            return Ok(History {
                messages: c.snapshot(),
                corrupt_skipped: c.corrupt_skipped,
                partial: c.partial,
                earlier: c.earlier,
            });
        }
        let limit = self.inner.config.history_limit;
        let journaled = match &self.inner.journal {
            Some(journal) => journal.recent_messages(key, limit).await?,
            None => Vec::new(),
        };
        if journaled.is_empty() {
            return Ok(History {
                partial: true,
                ..History::default()
            });
        }
        let cached = Cached::from_journal(journaled, limit);
        let history = History {
            messages: cached.snapshot(),
            corrupt_skipped: 0,
            partial: true,
            earlier: cached.earlier,
        };
        if self.inner.config.cache_bytes > 0 {
            self.inner
                .cache
                .insert(key.clone(), Arc::new(Mutex::new(cached)));
        }
        Ok(history)
    }
}

/// Adds to the store's last page the session's still-journaled messages it does not
/// hold (the oldest ones, within the page's bound); when they do not fit, the page
/// says there is more, and they come on the next one.
fn end_with_journaled(
    page: &mut MessagePage,
    journaled: Vec<Message>,
    more_journaled: bool,
    limit: ReadLimit,
) {
    let stored: std::collections::HashSet<_> = page.messages.iter().map(|m| m.id).collect();
    let missing: Vec<Message> = journaled
        .into_iter()
        .filter(|m| !stored.contains(&m.id))
        .collect();
    if !page.messages.is_empty() && page.messages.len() + missing.len() > limit.messages.max(1) {
        page.has_more = true;
        return;
    }
    page.messages.extend(missing);
    page.partial = more_journaled;
}

/// The page for what this process kept of a session while the store is unreachable.
fn partial_page(history: &History) -> MessagePage {
    MessagePage {
        messages: history.to_vec(),
        has_more: false,
        next_cursor: None,
        partial: true,
        corrupt_skipped: history.corrupt_skipped,
    }
}
