//! Looking after conversations: stats, titles, the paged session list, delete and erase, and
//! the store's own warnings.

use std::time::{Duration, Instant};

use super::{SessionManager, SessionStats};
use crate::error::Result;
use crate::limits::ListCursor;
use crate::message::{millis_to_datetime, Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};
use crate::store::{SessionMeta, SessionPage, SessionSummary};
use crate::title::validate_title;

/// Sessions one list page holds when a caller asks for all of them.
const LIST_PAGE: usize = 200;

/// How long the store's warnings are reused before it is asked again.
const WARNINGS_FOR: Duration = Duration::from_secs(30);

impl SessionManager {
    /// The session's stats, or `None` when it does not exist. Does not refresh the TTL.
    ///
    /// # Errors
    /// As [`SessionManager::stats`].
    pub async fn get_session(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        self.stats(key).await
    }

    /// Message count, bytes, TTL remaining, timestamps, store, mode and pending
    /// journal entries of a session; `None` when it does not exist. Looking does not
    /// refresh the TTL. While the store is unreachable, figures come from the cache and
    /// the journal; a session this process knows nothing about is then `Unavailable`,
    /// never "does not exist".
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached and there is no journal, or this
    /// process knows nothing of the session.
    pub async fn stats(&self, key: &SessionKey) -> Result<Option<SessionStats>> {
        match self.call(|| self.inner.store.meta(key)).await {
            Ok(Some(meta)) => Ok(Some(self.stats_from(key, &meta))),
            Ok(None) if self.pending_for(key) == 0 => Ok(None),
            Ok(None) => self.degraded_stats(key).await,
            Err(e) if e.is_retryable() && self.inner.journal.is_some() => {
                match self.degraded_stats(key).await? {
                    Some(stats) => Ok(Some(stats)),
                    None => Err(e),
                }
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
            title: None,
        }))
    }

    pub(super) fn stats_from(&self, key: &SessionKey, meta: &SessionMeta) -> SessionStats {
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
            title: meta.title.clone(),
        }
    }

    /// Gives the session a title (trimmed), or clears the given one (`None`: the
    /// automatic title, its first question, shows again). Does not refresh the TTL nor
    /// count as activity. Returns whether the session exists.
    ///
    /// The RAM cache holds messages, not titles, so it stays as it is; other servers
    /// read titles from the store (a Redis that reports changes tells them the session
    /// changed).
    ///
    /// # Errors
    /// `InvalidInput` for a title that is empty after trimming, longer than
    /// [`crate::MAX_GIVEN_TITLE_CHARS`] characters or holds control characters;
    /// `Unavailable` when the store cannot be reached (a title is not journaled).
    pub async fn rename(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        let title = title.map(validate_title).transpose()?;
        self.call(|| self.inner.store.set_title(key, title)).await
    }

    /// One page of the user's sessions, most recent activity first (ties by session
    /// id, descending), starting after `after`; at most `limit` (at least 1).
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be reached.
    pub async fn list_page(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        crate::message::validate_id("user", user)?;
        self.call(|| self.inner.store.list(user, after, limit))
            .await
    }

    /// Every session of the user, most recent activity first, read page by page (for
    /// a user's own handful of sessions; use [`SessionManager::list_page`] to show
    /// them).
    ///
    /// # Errors
    /// As [`SessionManager::list_page`].
    pub async fn list_sessions(&self, user: &str) -> Result<Vec<SessionSummary>> {
        let mut all = Vec::new();
        let mut after: Option<ListCursor> = None;
        loop {
            let page = self.list_page(user, after.as_ref(), LIST_PAGE).await?;
            all.extend(page.sessions);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// One page of the user's messages that match `query`, best first (see
    /// [`crate::search`]): every conversation of theirs, or only `query.session`. What
    /// the local journal holds while the store is down is not searched.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id or query; `Unsupported` when the store
    /// cannot search (Redis alone, `memory://`); `Unavailable` when it cannot be reached.
    pub async fn search(&self, user: &str, query: &SearchQuery) -> Result<SearchPage> {
        crate::message::validate_id("user", user)?;
        query.validate()?;
        if !self.inner.store.searches() {
            // Refused here, not by the store: a call that cannot fail would tell the
            // circuit breaker an unreachable store answers.
            return Err(crate::search::unsupported(self.store_kind()));
        }
        self.call(|| self.inner.store.search(user, query)).await
    }

    /// Deletes every key of the session, its journaled messages and its cache entry.
    /// Returns whether it existed.
    ///
    /// # Errors
    /// `Unavailable` when the store cannot be reached (nothing is deleted then).
    pub async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let existed = self.delete_one(key).await?;
        if let Some(journal) = &self.inner.journal {
            journal.scrub().await?;
        }
        Ok(existed)
    }

    async fn delete_one(&self, key: &SessionKey) -> Result<bool> {
        self.inner.cache.invalidate(key);
        let existed = self.call(|| self.inner.store.delete(key)).await?;
        let mut journaled = 0;
        if let Some(journal) = &self.inner.journal {
            let appends = self.journaled_appends();
            journaled = journal.remove_session(key).await?;
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            // Not if an append was journaled meanwhile (it may be this session's, and
            // outlive the removal): the next replay clears the count when it finds none.
            if self.journaled_appends() == appends {
                pending.remove(key);
            }
        }
        self.inner.cache.invalidate(key);
        Ok(existed || journaled > 0)
    }

    /// Erases every session of `user` from the store, the journal (this store's
    /// entries) and the cache, leaving no copy in the journal file's free pages or log.
    /// Returns how many sessions were deleted.
    ///
    /// # Errors
    /// `InvalidInput` for an invalid user id; `Unavailable` when the store cannot be
    /// reached (sessions deleted before the failure stay deleted).
    pub async fn delete_user(&self, user: &str) -> Result<usize> {
        crate::message::validate_id("user", user)?;
        let mut deleted = 0;
        let mut done = std::collections::HashSet::new();
        // Deleting shifts the pages, so always take the first one.
        loop {
            let page = self.list_page(user, None, LIST_PAGE).await?;
            let fresh: Vec<SessionSummary> = page
                .sessions
                .into_iter()
                .filter(|s| !done.contains(&s.session))
                .collect();
            if fresh.is_empty() {
                break;
            }
            for s in fresh {
                let key = SessionKey::new(user, s.session.as_str())?;
                if self.delete_one(&key).await? {
                    deleted += 1;
                }
                done.insert(s.session);
            }
        }
        if let Some(journal) = &self.inner.journal {
            for key in journal.sessions_of(user).await? {
                if !done.contains(key.session()) && self.delete_one(&key).await? {
                    deleted += 1;
                }
            }
            journal.scrub().await?;
        }
        Ok(deleted)
    }

    /// Settings of the store that put conversations at risk (a Redis that may evict
    /// keys), asked at most every 30 s and within the store timeout, and a store whose
    /// TTL deletes idle conversations ([`SessionManager::ttl_warning`]); logged once
    /// when they first appear.
    pub async fn store_warnings(&self) -> Vec<String> {
        let mut cached = self.inner.warnings.lock().await;
        if let Some((at, warnings)) = cached.as_ref() {
            if at.elapsed() < WARNINGS_FOR {
                return warnings.clone();
            }
        }
        let timeout = self
            .inner
            .config
            .store_timeout
            .max(Duration::from_millis(500));
        let mut fresh = tokio::time::timeout(timeout, self.inner.store.warnings())
            .await
            .unwrap_or_default();
        fresh.extend(self.ttl_warning());
        let was_quiet = cached.as_ref().is_none_or(|(_, w)| w.is_empty());
        if was_quiet {
            for w in &fresh {
                tracing::warn!(store = %self.store_url(), "{w}");
            }
        }
        *cached = Some((Instant::now(), fresh.clone()));
        fresh
    }

    /// The warning for a store whose TTL deletes idle conversations (Redis alone,
    /// [`SessionStore::keeps_idle_sessions`](crate::SessionStore::keeps_idle_sessions)
    /// says no) while the TTL is on; `None` otherwise.
    pub fn ttl_warning(&self) -> Option<String> {
        let ttl = self.inner.config.ttl.secs;
        (ttl > 0 && !self.inner.store.keeps_idle_sessions()).then(|| {
            format!(
                "idle conversations on {} are deleted after the TTL ({ttl} s) unless an \
                 archive is configured (--archive URL)",
                self.store_url()
            )
        })
    }

    /// Messages the local journal keeps for other stores, as warnings for people.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn other_store_warnings(&self) -> Result<Vec<String>> {
        let Some(journal) = &self.inner.journal else {
            return Ok(Vec::new());
        };
        Ok(journal
            .other_stores()
            .await?
            .into_iter()
            .map(|o| {
                format!(
                    "the local journal keeps {} message(s) written for another store ({}); \
                     they are never replayed into {} (run ragchat with that store to replay them)",
                    o.entries,
                    o.store,
                    self.store_url()
                )
            })
            .collect())
    }
}
