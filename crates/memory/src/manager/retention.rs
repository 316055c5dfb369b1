//! Retention: the one thing besides a person's own delete that removes conversations.
//!
//! A pass deletes every session whose last activity is older than the retention
//! (`max_age`), in store batches of [`RETENTION_BATCH`] until a batch comes back
//! short, so no single statement holds the store for long. Idleness alone deletes
//! nothing else: the TTL only bounds how long Redis keeps a conversation in RAM.
//!
//! What a purged session leaves in this process goes with it:
//! - its cache entry, so no read serves its messages from RAM;
//! - its journal entries written before the cutoff (while the store was down). Left
//!   there, the replay would append them and bring the session back, holding only
//!   its journaled tail. Entries written after the cutoff are activity the store has
//!   not seen yet and are replayed (the session starts again from them); a pass
//!   replays what the journal holds first, so the store judges idleness with them.
//!
//! Passes run when a command opens the manager and, in a server, in the background
//! ([`SessionManager::spawn_retention`], every [`retention_interval`]). A store that
//! keeps nothing durably (Redis alone: its TTL governs) refuses with `InvalidInput`.
//! Store calls of a pass are not counted by the circuit breaker: a slow batch is not
//! an outage, and must not send chat turns to the journal.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Inner, SessionManager};
use crate::error::{MemoryError, Result};
use crate::message::millis_to_datetime;

/// Sessions one store call of a retention pass deletes at most.
pub const RETENTION_BATCH: usize = 500;

/// Longest wait between two background passes.
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// Shortest wait between two background passes.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// What one retention pass did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionPass {
    /// Sessions deleted.
    pub deleted: u64,
    /// Store calls made (each deleting at most [`RETENTION_BATCH`] sessions).
    pub batches: u32,
    /// Sessions whose last activity was before this instant were deleted.
    pub cutoff: DateTime<Utc>,
    /// Journal entries of deleted sessions dropped with them.
    pub journal_entries_dropped: u64,
}

/// How often a server runs retention: a tenth of it, at least every second and at
/// most every minute (so a session outlives the retention by at most that much).
pub fn retention_interval(max_age: Duration) -> Duration {
    (max_age / 10).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

impl SessionManager {
    /// Deletes every session idle longer than `max_age` (see the module docs), and
    /// what this process keeps of them. Logs one line at INFO when it deleted
    /// something.
    ///
    /// # Errors
    /// `InvalidInput` for a zero `max_age` (that would delete everything) or a store
    /// without retention (Redis alone); `Unavailable` when the store cannot be reached
    /// (sessions deleted by earlier batches stay deleted).
    pub async fn purge_idle_once(&self, max_age: Duration) -> Result<RetentionPass> {
        if max_age.is_zero() {
            return Err(MemoryError::invalid(
                "a retention of 0 would delete every conversation; 0 means keep forever, \
                 which runs no retention at all",
            ));
        }
        let age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff_ms = Utc::now().timestamp_millis().saturating_sub(age_ms);
        let has_pending = !self
            .inner
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if has_pending {
            // Journaled messages are activity too: let the store see them first.
            if let Err(e) = self.replay_journal().await {
                tracing::debug!(error = %e, "replay before retention did not run");
            }
        }
        let mut pass = RetentionPass {
            deleted: 0,
            batches: 0,
            cutoff: millis_to_datetime(cutoff_ms),
            journal_entries_dropped: 0,
        };
        loop {
            let purged = self
                .inner
                .store
                .purge_idle(cutoff_ms, RETENTION_BATCH)
                .await?;
            pass.batches += 1;
            pass.deleted += purged.len() as u64;
            self.inner
                .retention_deleted
                .fetch_add(purged.len() as u64, Ordering::Relaxed);
            for key in &purged {
                self.inner.cache.invalidate(key);
                if let Some(journal) = &self.inner.journal {
                    let dropped = journal.remove_session_before(key, cutoff_ms).await?;
                    if dropped > 0 {
                        pass.journal_entries_dropped += dropped;
                        self.forget_pending(key, dropped);
                    }
                }
            }
            if purged.len() < RETENTION_BATCH {
                break;
            }
        }
        if pass.journal_entries_dropped > 0 {
            if let Some(journal) = &self.inner.journal {
                // Their earlier copies are still in the journal's log.
                journal.scrub().await?;
            }
        }
        if pass.deleted > 0 {
            tracing::info!(
                store = %self.store_url(),
                deleted = pass.deleted,
                idle_since_before = %pass.cutoff,
                batches = pass.batches,
                journal_entries_dropped = pass.journal_entries_dropped,
                "retention deleted idle conversations"
            );
        }
        Ok(pass)
    }

    /// Sessions retention deleted through this manager since it started.
    pub fn retention_deleted(&self) -> u64 {
        self.inner.retention_deleted.load(Ordering::Relaxed)
    }

    /// Runs [`SessionManager::purge_idle_once`] in the background every
    /// [`retention_interval`] of `max_age` (the first pass after one interval: a
    /// command opening the manager runs one itself). Failures are logged, and the
    /// next pass tries again; a store without retention (`InvalidInput`) ends the
    /// task. Stops when the last clone of the manager is dropped. Does nothing outside
    /// a Tokio runtime.
    pub fn spawn_retention(&self, max_age: Duration) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime: retention runs only on demand");
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = retention_interval(max_age);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                let manager = SessionManager { inner };
                match manager.purge_idle_once(max_age).await {
                    Ok(_) => {}
                    Err(MemoryError::InvalidInput(reason)) => {
                        tracing::debug!(%reason, "no retention on this store; the task ends");
                        return;
                    }
                    Err(e) if e.is_retryable() => {
                        tracing::debug!(error = %e, "retention pass did not run; next in {every:?}")
                    }
                    Err(e) => tracing::warn!(error = %e, "retention pass failed"),
                }
            }
        });
    }

    /// Takes `dropped` entries of `key` off the count of journaled messages.
    fn forget_pending(&self, key: &crate::message::SessionKey, dropped: u64) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = pending.get_mut(key) {
            *n = n.saturating_sub(dropped);
            if *n == 0 {
                pending.remove(key);
            }
        }
    }
}
