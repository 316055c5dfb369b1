//! Write-behind: what this process knows the archive lacks, and the task that writes
//! it there in batches, off the request path.
//!
//! An append marks its session *pending* here; the task wakes, waits a moment so that
//! a burst of turns becomes one write, and archives every pending session, several at
//! a time. Archiving one session is three steps (`archive_one`): claim (lock the
//! session in Redis and read what the archive has not confirmed, after `arch`), write
//! (an append to the archive, idempotent by message id), mark (raise `arch`, give the
//! session its TTL back once nothing is left, unlock). A crash between any two steps
//! leaves `arch` below `seq`: the entries are written again (the archive skips the
//! ids it has) by whichever process finds the session next, through its own pending
//! set or through the sweep, which walks Redis for sessions whose `arch` is behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::TierConfig;
use crate::backend::redis::{Claim, RedisStore};
use crate::error::Result;
use crate::limits::Quotas;
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, ArchiveState, ArchiveStatus, SessionStore, Ttl};

/// A session the archive is behind on, as far as this process knows.
struct Pending {
    /// When this process first knew (the age of the lag).
    since: Instant,
    /// Messages appended here and not confirmed yet (a lower bound of the lag).
    messages: u64,
    /// Raised by every append, so that finishing an older round does not forget a
    /// newer append.
    generation: u64,
    /// Not before this instant (after a failure, or while another process holds the
    /// session's lock).
    not_before: Option<Instant>,
}

/// State shared by the store and its archiver task.
pub(super) struct Shared {
    pending: Mutex<HashMap<SessionKey, Pending>>,
    pub(super) wake: tokio::sync::Notify,
    written: AtomicU64,
    pub(super) rehydrations: AtomicU64,
    down: Mutex<Option<String>>,
}

/// What was known of a pending session when a round on it started.
struct Round {
    generation: u64,
    messages: u64,
    started: Instant,
}

/// How one round on one session ended.
enum Step {
    /// Everything the claim saw is archived.
    Done,
    /// More is left (the claim's bound): go again.
    More,
    /// Another process holds the lock.
    Busy,
    /// The session is not in Redis any more.
    Gone,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            pending: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            written: AtomicU64::new(0),
            rehydrations: AtomicU64::new(0),
            down: Mutex::default(),
        }
    }
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An append stored `messages` new messages in `key`.
    pub(super) fn note(&self, key: &SessionKey, messages: u64) {
        let mut pending = self.pending();
        let entry = pending.entry(key.clone()).or_insert_with(|| Pending {
            since: Instant::now(),
            messages: 0,
            generation: 0,
            not_before: None,
        });
        entry.messages += messages;
        entry.generation += 1;
        drop(pending);
        self.wake.notify_one();
    }

    /// Sessions this process knows the archive is behind on.
    pub(super) fn behind(&self) -> usize {
        self.pending().len()
    }

    /// The sessions of `user` (only `session`, when given) this process knows the
    /// archive is behind on.
    pub(super) fn pending_of(&self, user: &str, session: Option<&str>) -> Vec<SessionKey> {
        self.pending()
            .keys()
            .filter(|k| k.user() == user && session.is_none_or(|s| k.session() == s))
            .cloned()
            .collect()
    }

    /// Forgets `key` (deleted).
    pub(super) fn forget(&self, key: &SessionKey) {
        self.pending().remove(key);
    }

    /// Sessions due for a round, at most `limit`, each with what was known of it when
    /// the round started.
    fn due(&self, limit: usize) -> Vec<(SessionKey, Round)> {
        let now = Instant::now();
        self.pending()
            .iter()
            .filter(|(_, p)| p.not_before.is_none_or(|t| t <= now))
            .take(limit)
            .map(|(k, p)| {
                let round = Round {
                    generation: p.generation,
                    messages: p.messages,
                    started: now,
                };
                (k.clone(), round)
            })
            .collect()
    }

    fn finish(&self, key: &SessionKey, round: &Round, step: &Result<Step>, retry: Duration) {
        let mut pending = self.pending();
        let Some(entry) = pending.get_mut(key) else {
            return;
        };
        match step {
            Ok(Step::Done) | Ok(Step::Gone) if entry.generation == round.generation => {
                pending.remove(key);
            }
            Ok(Step::Done) => {
                // Appended to during the round: what came before the round's claim is
                // archived, so the lag is at most as old as the round.
                entry.since = round.started;
                entry.messages = entry.messages.saturating_sub(round.messages);
                entry.not_before = None;
            }
            Ok(Step::Gone) | Ok(Step::More) => entry.not_before = None,
            Ok(Step::Busy) => entry.not_before = Some(Instant::now() + retry / 5),
            Err(_) => entry.not_before = Some(Instant::now() + retry),
        }
    }

    pub(super) fn set_down(&self, why: Option<String>) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        match (&*down, &why) {
            (None, Some(w)) => {
                tracing::warn!(error = %w, "the archive is not answering; unarchived conversations stay in Redis (without expiry) until it does")
            }
            (Some(_), None) => tracing::info!("the archive answers again; catching up"),
            _ => {}
        }
        *down = why;
    }

    pub(super) fn status(&self) -> ArchiveStatus {
        let pending = self.pending();
        let lag_messages = pending.values().map(|p| p.messages.max(1)).sum();
        let lag_seconds = pending
            .values()
            .map(|p| p.since.elapsed().as_secs_f64())
            .fold(0.0, f64::max);
        drop(pending);
        let last_error = self.down.lock().unwrap_or_else(|e| e.into_inner()).clone();
        ArchiveStatus {
            state: if last_error.is_some() {
                ArchiveState::Down
            } else {
                ArchiveState::Ok
            },
            lag_messages,
            lag_seconds,
            written_total: self.written.load(Ordering::Relaxed),
            rehydrations_total: self.rehydrations.load(Ordering::Relaxed),
            last_error,
        }
    }
}

/// A token naming one holder of a session's lock.
pub(super) fn token() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// One round on one session: claim, write, mark (see the module docs).
async fn archive_one(
    hot: &RedisStore,
    archive: &dyn SessionStore,
    shared: &Shared,
    config: &TierConfig,
    key: &SessionKey,
) -> Result<Step> {
    let token = token();
    let claim = hot
        .claim(key, &token, config.lock, config.claim_limit)
        .await?;
    let unarchived = match claim {
        Claim::Busy => return Ok(Step::Busy),
        Claim::Missing => return Ok(Step::Gone),
        Claim::Ready(u) => u,
    };
    if !unarchived.entries.is_empty() {
        let messages: Vec<Message> = unarchived.entries.iter().map(|(_, m)| m.clone()).collect();
        let opts = AppendOptions {
            ttl: Ttl::NEVER,
            max_messages: config.max_messages,
            refresh_ttl: true,
            quotas: Quotas::UNBOUNDED,
        };
        let written = archive.append(key, &messages, opts).await;
        let written = match written {
            Ok(out) => out.stored() as u64,
            Err(e) => {
                let _ = hot.unlock(key, &token).await;
                return Err(e);
            }
        };
        shared.written.fetch_add(written, Ordering::Relaxed);
        if let Some(title) = &unarchived.title {
            if let Err(e) = archive.set_title(key, Some(title)).await {
                let _ = hot.unlock(key, &token).await;
                return Err(e);
            }
        }
    }
    hot.mark_archived(key, &token, unarchived.upto(), config.ttl)
        .await?;
    // Everything the session held when it was claimed is archived, unless the claim's
    // bound left some out. Appends made meanwhile are another round's: this
    // process's raised the session's generation (so it stays pending), another
    // process's are that process's to archive (or the sweep's).
    Ok(if unarchived.more {
        Step::More
    } else {
        Step::Done
    })
}

/// Archives `key` now, until nothing of it is left unarchived (`--archive-mode sync`).
/// Waits for another process's lock at most the lock's lifetime.
pub(super) async fn archive_now(
    hot: &RedisStore,
    archive: &dyn SessionStore,
    shared: &Shared,
    config: &TierConfig,
    key: &SessionKey,
) -> Result<()> {
    let deadline = Instant::now() + config.lock + Duration::from_secs(1);
    loop {
        match archive_one(hot, archive, shared, config, key).await {
            Ok(Step::Done) | Ok(Step::Gone) => {
                shared.set_down(None);
                return Ok(());
            }
            Ok(Step::More) => {}
            Ok(Step::Busy) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(Step::Busy) => {
                return Err(crate::error::MemoryError::Unavailable {
                    store: hot.describe(),
                    reason: "another server held the conversation's archive lock too long".into(),
                })
            }
            Err(e) => {
                shared.set_down(Some(e.to_string()));
                return Err(e);
            }
        }
    }
}

/// The archiver task: runs until the store is dropped.
pub(super) async fn run(
    hot: Arc<RedisStore>,
    archive: Arc<dyn SessionStore>,
    shared: Weak<Shared>,
    config: TierConfig,
) {
    let mut next_sweep = config.sweep_every.map(|_| Instant::now());
    loop {
        let Some(state) = shared.upgrade() else {
            return;
        };
        if let (Some(at), Some(every)) = (next_sweep, config.sweep_every) {
            if Instant::now() >= at {
                sweep(&hot, &state).await;
                next_sweep = Some(Instant::now() + every);
            }
        }
        let due = state.due(256);
        if due.is_empty() {
            tokio::select! {
                _ = state.wake.notified() => {
                    // Let the burst that woke us gather into one round.
                    tokio::time::sleep(config.batch_delay).await;
                }
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            continue;
        }
        let round_started = Instant::now();
        let round = futures::stream::iter(due).for_each_concurrent(config.concurrency, |(key, round)| {
            let (hot, archive, state, config) = (&hot, &archive, &state, &config);
            async move {
                let step = archive_one(hot, archive.as_ref(), state, config, &key).await;
                match &step {
                    Ok(_) => state.set_down(None),
                    Err(e) if e.is_retryable() || matches!(e, crate::error::MemoryError::Storage { .. }) => {
                        state.set_down(Some(e.to_string()))
                    }
                    Err(e) => tracing::warn!(session = %key, error = %e, "cannot archive this conversation"),
                }
                state.finish(&key, &round, &step, config.retry_after);
            }
        });
        round.await;
        // Rounds are paced: under a steady load, each session is written at most once
        // per `batch_delay`, with what gathered meanwhile (fewer, larger writes).
        let rest = config.batch_delay.saturating_sub(round_started.elapsed());
        if !rest.is_zero() {
            tokio::time::sleep(rest).await;
        }
    }
}

/// Walks Redis for sessions the archive is behind on and marks them pending. Sessions
/// another process is archiving are found too; the lock sorts that out.
async fn sweep(hot: &RedisStore, shared: &Shared) {
    let mut walk = hot.sweep();
    let mut found = 0usize;
    loop {
        match hot.sweep_step(&mut walk).await {
            Ok(Some(keys)) => {
                let mut pending = shared.pending();
                for key in keys {
                    if let std::collections::hash_map::Entry::Vacant(slot) = pending.entry(key) {
                        found += 1;
                        slot.insert(Pending {
                            since: Instant::now(),
                            messages: 0,
                            generation: 0,
                            not_before: None,
                        });
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "cannot walk Redis for unarchived conversations");
                return;
            }
        }
    }
    if found > 0 {
        tracing::info!(
            sessions = found,
            "found conversations the archive is behind on"
        );
        shared.wake.notify_one();
    }
}
