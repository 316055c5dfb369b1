//! Moving journaled appends to the store once it answers again.
//!
//! Entries go in journal order, per session, in batches, through the store's
//! idempotent append; an entry leaves the journal only after the store acknowledged
//! it. A crash between the two steps replays the entry again later, which stores
//! nothing new (the message id is already there), so nothing is lost or doubled.
//!
//! Only this store's entries are replayed (the journal handle is opened for its
//! identity); entries for other stores are reported and left alone. Replayed messages
//! were acknowledged already, so no quota refuses them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Inner, Mode, ReplayReport, SessionManager};
use crate::error::Result;
use crate::limits::{Quotas, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::store::AppendOptions;

/// Entries sent to the store per append while replaying: at most 256, and at most
/// about 1 MiB, so that one replayed batch is a short script for Redis.
const REPLAY_BATCH: ReadLimit = ReadLimit::new(256, 1024 * 1024);

/// The background task looks at the journal file itself (for entries other processes
/// left there) every this many intervals, even when this process journaled nothing.
const RESCAN_EVERY: u32 = 20;

impl SessionManager {
    /// Starts the background replay task, if inside a Tokio runtime.
    pub(super) fn spawn_replay_task(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!("no Tokio runtime: journal replay runs only on demand");
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let wake = Arc::clone(&self.inner.wake);
        let interval = self.inner.config.replay_interval;
        runtime.spawn(async move {
            let mut ticks = 0u32;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let manager = SessionManager { inner };
                let has_pending = !manager
                    .inner
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
                if ticks % RESCAN_EVERY == 0 || has_pending {
                    match manager.replay_journal().await {
                        Ok(report) if report.replayed > 0 => tracing::info!(
                            replayed = report.replayed,
                            already_stored = report.already_stored,
                            remaining = report.remaining,
                            "replayed journaled messages to the store"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::debug!(error = %e, "journal replay did not run"),
                    }
                }
                drop(manager);
                ticks = ticks.wrapping_add(1);
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        });
    }

    /// Replays every journaled entry the store will take now; returns what moved.
    ///
    /// Stops at the first sign that the store is unreachable (reported in `error`,
    /// not as an `Err`). Safe to run from several processes at once.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn replay_journal(&self) -> Result<ReplayReport> {
        let Some(journal) = &self.inner.journal else {
            return Ok(ReplayReport::default());
        };
        let _guard = self.inner.replay_lock.lock().await;
        if self.mode() == Mode::Degraded {
            // Probe with a PING (refused at once while the breaker is open) before
            // scanning the journal for nothing.
            if let Err(e) = self.call(|| self.inner.store.ping()).await {
                return Ok(ReplayReport {
                    error: Some(e.to_string()),
                    remaining: journal.stats().await?.entries,
                    other_stores: journal.other_stores().await?,
                    ..ReplayReport::default()
                });
            }
        }
        let appends = self.journaled_appends();
        let sessions = journal.pending_sessions().await?;
        {
            let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
            // An append journaled since the query may be missing from its answer: then
            // what was known stays (a session with nothing left is dropped when it is
            // next replayed, or by the next listing).
            if self.journaled_appends() == appends {
                pending.clear();
            }
            for (key, n) in &sessions {
                let known = pending.entry(key.clone()).or_insert(0);
                *known = (*known).max(*n);
            }
        }
        let mut report = ReplayReport {
            sessions: sessions.len(),
            ..ReplayReport::default()
        };
        for (key, _) in &sessions {
            if let Err(e) = self.replay_session(key, &mut report).await {
                let retryable = e.is_retryable();
                report.error = Some(e.to_string());
                if retryable {
                    break;
                }
                tracing::warn!(session = %key, error = %e, "could not replay a session's journal; will retry");
            }
        }
        report.remaining = journal.stats().await?.entries;
        report.other_stores = journal.other_stores().await?;
        if report.replayed > 0 && report.remaining == 0 {
            // The replayed messages' earlier copies stay in the journal's log until it
            // is emptied.
            journal.scrub().await?;
        }
        Ok(report)
    }

    /// Replays one session's journal unless a replay is already running.
    pub(super) async fn replay_session_if_idle(&self, key: &SessionKey) {
        if self.mode() == Mode::Degraded {
            return;
        }
        let Ok(_guard) = self.inner.replay_lock.try_lock() else {
            return;
        };
        let mut report = ReplayReport::default();
        if let Err(e) = self.replay_session(key, &mut report).await {
            tracing::debug!(session = %key, error = %e, "replay before read did not finish");
        }
    }

    /// Moves one session's entries, oldest first, batch by batch. Callers hold the
    /// replay lock.
    async fn replay_session(&self, key: &SessionKey, report: &mut ReplayReport) -> Result<()> {
        let Some(journal) = &self.inner.journal else {
            return Ok(());
        };
        loop {
            let appends = self.journaled_appends();
            let batch = journal.entries(key, REPLAY_BATCH).await?;
            if batch.is_empty() {
                let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
                // Not if an append was journaled since the query (it may be this
                // session's, and missing from the answer).
                if self.journaled_appends() == appends {
                    pending.remove(key);
                }
                return Ok(());
            }
            let messages: Vec<Message> = batch.iter().map(|e| e.message.clone()).collect();
            let outcome = self
                .call(|| {
                    self.inner.store.append(
                        key,
                        &messages,
                        AppendOptions {
                            refresh_ttl: true,
                            quotas: Quotas::UNBOUNDED,
                            ..self.append_options(key)
                        },
                    )
                })
                .await?;
            self.note_repair(outcome.repaired);
            journal
                .remove(batch.iter().map(|e| e.seq).collect())
                .await?;
            let moved = batch.len() as u64;
            report.replayed += moved;
            report.already_stored += moved - outcome.stored() as u64;
            if let Some(n) = self
                .inner
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(key)
            {
                *n = n.saturating_sub(moved);
            }
            // A cached copy of the session is rebuilt from the store on the next read:
            // one holding these as journaled, and a clean one too, which the store
            // would go on vouching for (Redis does not tell a connection about its
            // own writes), without these.
            self.inner.cache.invalidate(key);
        }
    }

    /// How many appends this process journaled so far.
    pub(super) fn journaled_appends(&self) -> u64 {
        self.inner.journaled_appends.load(Ordering::SeqCst)
    }
}
