//! Degraded episodes, for the log: one WARN line when the store stops answering, and
//! one summary line when it answers again, however many appends the journal took in
//! between (an outage under load used to log a line per journaled turn).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The current episode (if any) and what happened during it.
#[derive(Debug, Default)]
pub(super) struct Episodes {
    started: Mutex<Option<Instant>>,
    journaled: AtomicU64,
    degraded_reads: AtomicU64,
}

impl Episodes {
    /// The store failed: starts an episode (logging its one warning) unless one runs.
    pub(super) fn store_failed(&self, store: &str, error: &dyn std::fmt::Display) {
        let mut started = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if started.is_none() {
            *started = Some(Instant::now());
            self.journaled.store(0, Ordering::Relaxed);
            self.degraded_reads.store(0, Ordering::Relaxed);
            tracing::warn!(%store, %error, "store unreachable: degraded mode, appends go to the local journal until it answers (one line per outage; a summary follows)");
        }
    }

    /// The store answered: ends the episode, if one ran, with its summary.
    pub(super) fn store_answered(&self, store: &str) {
        let Some(since) = self
            .started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let journaled = self.journaled.swap(0, Ordering::Relaxed);
        let reads = self.degraded_reads.swap(0, Ordering::Relaxed);
        tracing::info!(
            %store,
            "store answers again after {:.1} s degraded: {journaled} appends journaled, {reads} reads served from the cache and the journal; normal mode",
            since.elapsed().as_secs_f64()
        );
    }

    /// An append went to the journal.
    pub(super) fn journaled(&self) {
        self.journaled.fetch_add(1, Ordering::Relaxed);
    }

    /// A read was served from the cache and the journal.
    pub(super) fn degraded_read(&self) {
        self.degraded_reads.fetch_add(1, Ordering::Relaxed);
    }
}
