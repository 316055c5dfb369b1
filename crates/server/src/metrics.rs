//! Prometheus metrics, all named `ragchat_*`, rendered by `GET /metrics`.
//!
//! Each [`Metrics`] owns its own recorder (none is installed globally), so several
//! servers, or several test apps, can live in one process without sharing counts.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `ragchat_turn_seconds{outcome}` | histogram | whole chat turns: `ok`, `cancelled`, `error` |
//! | `ragchat_turn_phase_seconds{phase}` | histogram | `memory_read`, `recall`, `retrieval`, `answer`, `memory_write` |
//! | `ragchat_store_call_seconds{op}` | histogram | the store calls of a turn: `read` (history), `append` |
//! | `ragchat_turns_journaled_total` | counter | turns the local journal took while the store was down |
//! | `ragchat_http_requests_total{route,status}` | counter | responses by matched route and status |
//! | `ragchat_turns_in_flight` | gauge | turns being answered now |
//! | `ragchat_degraded` | gauge | 1 while the store is unreachable (appends go to the journal) |
//! | `ragchat_journal_pending_messages`, `ragchat_journal_pending_bytes` | gauge | waiting to be replayed |
//! | `ragchat_active_sessions` | gauge | sessions with a turn on this server in the last 5 minutes |
//! | `ragchat_memory_reads_total{source}` | counter | history reads: `cache` (no round trip: Redis vouched nothing changed), `store` (one round trip), `degraded` (store unreachable) |
//! | `ragchat_memory_repairs_total` | counter | conversations found with keys evicted by Redis and rebuilt from what was left |
//! | `ragchat_retention_deleted_total` | counter | conversations `--retention` deleted (idle longer than it) |
//! | `ragchat_archive_lag_messages` | gauge | acknowledged messages this server knows the archive lacks (Redis keeps them, without expiry) |
//! | `ragchat_archive_lag_seconds` | gauge | age of the oldest of them (0 when caught up) |
//! | `ragchat_archive_written_total` | counter | messages this server wrote to the archive |
//! | `ragchat_rehydrations_total` | counter | conversations this server loaded back from the archive into Redis |
//!
//! The `ragchat_archive_*` and `ragchat_rehydrations_total` series exist only on a
//! Redis store with an archive (`--archive`): they are registered the first time the
//! archive's status is observed, so a store without one does not export zeros that
//! read as "an archive, idle". They are copied from the store's own counters (which
//! only grow while the process lives) on every scrape and `/readyz`.
//!
//! The edge's counters (failed authentications, lockouts, rate limits, timeouts,
//! idempotent replays) are listed in [`crate::edge_metrics`].
//!
//! The cache hit ratio is `cache / (cache + store)` of `ragchat_memory_reads_total`,
//! refreshed from the memory status on every scrape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use ragchat_memory::{ArchiveStatus, MemoryStatus, Mode, SessionKey};

use ragchat_engine::TurnTimings;

use crate::auth::failures::{AuthEvents, FailureReason};
use crate::edge_metrics::EdgeMetrics;
use crate::ratelimit::{Limit, RateLimitEvents};

/// A session counts as active this long after its last turn.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(300);

/// Histogram buckets, in seconds: from half a millisecond (a cached store call) to a
/// minute (a slow LLM).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Above this many tracked sessions, expired ones are pruned on every turn rather than
/// only on scrapes.
const ACTIVE_PRUNE_THRESHOLD: usize = 10_000;

/// How a turn ended, for `ragchat_turn_seconds{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnOutcomeLabel {
    /// Answered and stored.
    Ok,
    /// The client went away; the partial answer was stored as incomplete.
    Cancelled,
    /// Failed; nothing was stored.
    Error,
}

/// The server's metrics: a private Prometheus recorder and handles into it.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    instruments: Instruments,
    edge: EdgeMetrics,
    active: Mutex<HashMap<SessionKey, Instant>>,
}

/// Handles registered once, so the hot path does not look metrics up by name.
struct Instruments {
    turn: [Histogram; 3],
    phase: [Histogram; 5],
    store_read: Histogram,
    store_append: Histogram,
    journaled: Counter,
    in_flight: Gauge,
    degraded: Gauge,
    journal_messages: Gauge,
    journal_bytes: Gauge,
    active_sessions: Gauge,
    /// `cache`, `store`, `degraded`.
    reads: [Counter; 3],
    repairs: Counter,
    retention_deleted: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics with its own recorder.
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        // `set_buckets` only fails for an empty list, and ours is not.
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let instruments = metrics::with_local_recorder(&recorder, || {
            describe();
            Instruments {
                turn: ["ok", "cancelled", "error"]
                    .map(|o| metrics::histogram!("ragchat_turn_seconds", "outcome" => o)),
                phase: [
                    "memory_read",
                    "recall",
                    "retrieval",
                    "answer",
                    "memory_write",
                ]
                .map(|p| metrics::histogram!("ragchat_turn_phase_seconds", "phase" => p)),
                store_read: metrics::histogram!("ragchat_store_call_seconds", "op" => "read"),
                store_append: metrics::histogram!("ragchat_store_call_seconds", "op" => "append"),
                journaled: metrics::counter!("ragchat_turns_journaled_total"),
                in_flight: metrics::gauge!("ragchat_turns_in_flight"),
                degraded: metrics::gauge!("ragchat_degraded"),
                journal_messages: metrics::gauge!("ragchat_journal_pending_messages"),
                journal_bytes: metrics::gauge!("ragchat_journal_pending_bytes"),
                active_sessions: metrics::gauge!("ragchat_active_sessions"),
                reads: ["cache", "store", "degraded"]
                    .map(|s| metrics::counter!("ragchat_memory_reads_total", "source" => s)),
                repairs: metrics::counter!("ragchat_memory_repairs_total"),
                retention_deleted: metrics::counter!("ragchat_retention_deleted_total"),
            }
        });
        let edge = metrics::with_local_recorder(&recorder, EdgeMetrics::register);
        // Publish the descriptions (the exporter commits them on upkeep).
        handle.run_upkeep();
        Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                instruments,
                edge,
                active: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A turn started; the returned guard marks it finished when dropped.
    pub fn turn_started(&self) -> InFlightGuard {
        self.inner.instruments.in_flight.increment(1.0);
        InFlightGuard {
            gauge: self.inner.instruments.in_flight.clone(),
        }
    }

    /// Records a finished turn: its total time and, when it reached the store, its
    /// phases.
    pub fn turn_finished(
        &self,
        key: &SessionKey,
        outcome: TurnOutcomeLabel,
        total: Duration,
        timings: Option<&TurnTimings>,
        journaled: bool,
    ) {
        let index = match outcome {
            TurnOutcomeLabel::Ok => 0,
            TurnOutcomeLabel::Cancelled => 1,
            TurnOutcomeLabel::Error => 2,
        };
        self.inner.instruments.turn[index].record(total.as_secs_f64());
        if let Some(t) = timings {
            let phases = [
                t.memory_read,
                t.recall,
                t.retrieval,
                t.answer,
                t.memory_write,
            ];
            for (histogram, took) in self.inner.instruments.phase.iter().zip(phases) {
                histogram.record(took.as_secs_f64());
            }
            self.inner
                .instruments
                .store_read
                .record(t.memory_read.as_secs_f64());
            self.inner
                .instruments
                .store_append
                .record(t.memory_write.as_secs_f64());
        }
        if journaled {
            self.inner.instruments.journaled.increment(1);
        }
        if outcome != TurnOutcomeLabel::Error {
            let mut active = self.lock_active();
            active.insert(key.clone(), Instant::now());
            if active.len() > ACTIVE_PRUNE_THRESHOLD {
                prune(&mut active);
            }
        }
    }

    /// Counts one HTTP response.
    pub fn http_response(&self, route: &str, status: u16) {
        metrics::with_local_recorder(&self.inner.recorder, || {
            metrics::counter!(
                "ragchat_http_requests_total",
                "route" => route.to_string(),
                "status" => status.to_string()
            )
            .increment(1);
        });
    }

    /// Sets the memory gauges from a status snapshot.
    pub fn observe_memory(&self, status: &MemoryStatus) {
        let degraded = if status.mode == Mode::Degraded {
            1.0
        } else {
            0.0
        };
        self.inner.instruments.degraded.set(degraded);
        self.inner
            .instruments
            .journal_messages
            .set(status.pending_sync as f64);
        self.inner
            .instruments
            .journal_bytes
            .set(status.pending_bytes as f64);
        let reads = [
            status.reads.from_cache,
            status.reads.from_store,
            status.reads.degraded,
        ];
        for (counter, value) in self.inner.instruments.reads.iter().zip(reads) {
            counter.absolute(value);
        }
        self.inner.instruments.repairs.absolute(status.repairs);
        self.inner
            .instruments
            .retention_deleted
            .absolute(status.retention_deleted);
    }

    /// Sets the archive's gauges and counters from its status (see the module docs).
    pub fn observe_archive(&self, status: &ArchiveStatus) {
        metrics::with_local_recorder(&self.inner.recorder, || {
            metrics::gauge!("ragchat_archive_lag_messages").set(status.lag_messages as f64);
            metrics::gauge!("ragchat_archive_lag_seconds").set(status.lag_seconds);
            // `absolute` never lowers a counter, so a scrape racing another keeps
            // the series monotonic.
            metrics::counter!("ragchat_archive_written_total").absolute(status.written_total);
            metrics::counter!("ragchat_rehydrations_total").absolute(status.rehydrations_total);
        });
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let active = {
            let mut active = self.lock_active();
            prune(&mut active);
            active.len()
        };
        self.inner.instruments.active_sessions.set(active as f64);
        self.inner.handle.render()
    }

    /// Drains histogram samples into their buckets; call every few seconds so memory
    /// stays flat between scrapes.
    pub fn upkeep(&self) {
        self.inner.handle.run_upkeep();
    }

    /// The edge's counters: failed authentications, lockouts, 429s, timeouts, replays.
    pub fn edge(&self) -> &EdgeMetrics {
        &self.inner.edge
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, Instant>> {
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn prune(active: &mut HashMap<SessionKey, Instant>) {
    active.retain(|_, last| last.elapsed() < ACTIVE_WINDOW);
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "ragchat_turn_seconds",
        Unit::Seconds,
        "Chat turns, end to end, by outcome"
    );
    describe_histogram!(
        "ragchat_turn_phase_seconds",
        Unit::Seconds,
        "Time spent in each phase of a chat turn"
    );
    describe_histogram!(
        "ragchat_store_call_seconds",
        Unit::Seconds,
        "Conversation store calls of a turn (history read, append)"
    );
    describe_counter!(
        "ragchat_turns_journaled_total",
        "Turns the local journal took while the store was unreachable"
    );
    describe_counter!(
        "ragchat_http_requests_total",
        "HTTP responses by route and status"
    );
    describe_counter!(
        "ragchat_memory_reads_total",
        "Conversation history reads by how they were served: cache (no round trip), store, degraded"
    );
    describe_counter!(
        "ragchat_memory_repairs_total",
        "Conversations found with keys evicted by Redis and rebuilt from what was left"
    );
    describe_counter!(
        "ragchat_retention_deleted_total",
        "Conversations retention deleted for being idle longer than --retention"
    );
    describe_counter!(
        "ragchat_archive_written_total",
        "Messages this server wrote to the archive behind Redis"
    );
    describe_counter!(
        "ragchat_rehydrations_total",
        "Conversations this server loaded back from the archive into Redis"
    );
    describe_gauge!(
        "ragchat_archive_lag_messages",
        "Acknowledged messages this server knows the archive does not have yet"
    );
    describe_gauge!(
        "ragchat_archive_lag_seconds",
        Unit::Seconds,
        "Age of the oldest message the archive does not have yet"
    );
    describe_gauge!("ragchat_turns_in_flight", "Chat turns being answered now");
    describe_gauge!(
        "ragchat_degraded",
        "1 while the conversation store is unreachable"
    );
    describe_gauge!(
        "ragchat_journal_pending_messages",
        "Messages in the local journal waiting for the store"
    );
    describe_gauge!(
        "ragchat_journal_pending_bytes",
        Unit::Bytes,
        "Bytes in the local journal waiting for the store"
    );
    describe_gauge!(
        "ragchat_active_sessions",
        "Sessions with a turn on this server in the last 5 minutes"
    );
}

/// Decrements `ragchat_turns_in_flight` when dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    gauge: Gauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

/// Failed authentications and lockouts count in the edge metrics.
impl AuthEvents for Metrics {
    fn auth_failure(&self, reason: FailureReason) {
        self.edge().auth_failure(reason);
    }

    fn lockout(&self) {
        self.edge().lockout();
    }

    fn refused_locked_out(&self) {
        self.edge().refused_locked_out();
    }
}

/// Rate-limit refusals count in the edge metrics.
impl RateLimitEvents for Metrics {
    fn rate_limited(&self, limit: Limit) {
        self.edge().rate_limited(limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_turns() {
        let metrics = Metrics::new();
        let key = SessionKey::new("u", "s").unwrap();
        let timings = TurnTimings {
            memory_read: Duration::from_millis(1),
            recall: Duration::from_millis(1),
            retrieval: Duration::from_millis(2),
            answer: Duration::from_millis(3),
            memory_write: Duration::from_millis(1),
        };
        {
            let _guard = metrics.turn_started();
            metrics.turn_finished(
                &key,
                TurnOutcomeLabel::Ok,
                Duration::from_millis(7),
                Some(&timings),
                false,
            );
        }
        metrics.http_response("/v1/sessions", 200);
        let text = metrics.render();
        assert!(
            text.contains("ragchat_turn_seconds_count{outcome=\"ok\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("ragchat_turn_phase_seconds_bucket{phase=\"retrieval\",le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(text.contains("ragchat_active_sessions 1"), "{text}");
        assert!(text.contains("ragchat_turns_in_flight 0"), "{text}");
        assert!(
            text.contains("ragchat_http_requests_total{route=\"/v1/sessions\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("# HELP ragchat_degraded"), "{text}");
        // Two sets of metrics do not share counts.
        assert!(!Metrics::new().render().contains("outcome=\"ok\"} 1"));
    }

    #[test]
    fn archive_series_appear_with_an_archive_and_stay_monotonic() {
        let metrics = Metrics::new();
        assert!(
            !metrics.render().contains("ragchat_archive_"),
            "no archive, no archive series"
        );
        let mut status = ArchiveStatus {
            state: ragchat_memory::ArchiveState::Ok,
            lag_messages: 3,
            lag_seconds: 1.5,
            written_total: 7,
            rehydrations_total: 2,
            last_error: None,
        };
        metrics.observe_archive(&status);
        // An older snapshot observed late never lowers a counter.
        status.written_total = 4;
        status.lag_messages = 0;
        status.lag_seconds = 0.0;
        metrics.observe_archive(&status);
        let text = metrics.render();
        assert!(text.contains("ragchat_archive_written_total 7"), "{text}");
        assert!(text.contains("ragchat_rehydrations_total 2"), "{text}");
        assert!(text.contains("ragchat_archive_lag_messages 0"), "{text}");
        assert!(text.contains("ragchat_archive_lag_seconds 0"), "{text}");
        assert!(
            text.contains("# TYPE ragchat_archive_written_total counter"),
            "{text}"
        );
    }
}
