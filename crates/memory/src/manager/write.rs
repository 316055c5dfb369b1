//! Writing: appends (idempotent, within the quotas, through the cache), the journal
//! fallback while the store is unreachable, and the input checks every append passes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::Cached;
use super::{lock, AppendReceipt, SessionManager, SessionStats};
use crate::error::{MemoryError, Result};
use crate::message::{Message, Role, SessionKey, SourceRef};
use crate::store::{AppendOptions, AppendOutcome, LoadedSession, SessionMeta};

impl SessionManager {
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
    /// limit; `Quota` (nothing written) when the new messages would break a quota of
    /// [`ManagerConfig::quotas`](super::ManagerConfig::quotas); `Unavailable` when the
    /// store cannot be reached and there is no journal, or the journal is full. While
    /// the store is unreachable the journal takes appends without a quota check (the
    /// store is what knows the figures).
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
        // Asked before the store takes the append: a replay that moves the session's
        // journaled messages to the store while it does would hide them afterwards.
        let nothing_journaled = self.pending_for(key) == 0;
        match self
            .call(|| self.inner.store.append(key, &messages, opts))
            .await
        {
            Ok(outcome) => {
                self.note_repair(outcome.repaired);
                let stored = outcome.stored();
                self.write_through(
                    key,
                    &messages,
                    &outcome,
                    opts.refresh_ttl,
                    nothing_journaled,
                );
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
    pub(super) fn append_options(&self, key: &SessionKey) -> AppendOptions {
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
            quotas: self.inner.config.quotas,
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
        self.inner.episodes.journaled();
        {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            *pending.entry(key.clone()).or_insert(0) += messages.len() as u64;
            self.inner.journaled_appends.fetch_add(1, Ordering::SeqCst);
        }
        if self.inner.config.cache_bytes > 0 {
            match self.inner.cache.get(key) {
                Some(entry) => {
                    lock(&entry).add_unsynced(messages.clone());
                    self.inner.cache.insert(key.clone(), entry);
                }
                None => {
                    // What this process knows of the session is what the journal holds.
                    let limit = self.inner.config.history_limit;
                    let known = journal.recent_messages(key, limit).await?;
                    let cached = Cached::from_journal(known, limit);
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
    /// `nothing_journaled`: the journal held none of the session's messages when the
    /// append was sent.
    fn write_through(
        &self,
        key: &SessionKey,
        messages: &[Message],
        outcome: &AppendOutcome,
        refreshed: bool,
        nothing_journaled: bool,
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
                    if cached.created_at_ms != meta.created_at_ms
                        || !cached.is_clean()
                        || !nothing_journaled
                        || outcome.repaired
                    {
                        // A recreated session, or one with journaled messages: the
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
                // journal held older ones for it when the append was sent).
                let complete = nothing_journaled
                    && meta.trimmed_seq == 0
                    && meta.message_count as usize == new.len()
                    && new.first().is_some_and(|(s, _)| *s == 1);
                if complete {
                    let cached = Cached::from_load(
                        LoadedSession {
                            meta: meta.clone(),
                            messages: new,
                            corrupt: Vec::new(),
                            stamp,
                            more: false,
                            repaired: false,
                        },
                        self.inner.config.history_limit,
                    );
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
}
