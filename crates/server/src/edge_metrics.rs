//! The metrics of the server's edge: failed authentications, lockouts, rate limits,
//! request deadlines and idempotent replays (registered with [`crate::metrics::Metrics`]'s
//! recorder, rendered with the rest by `GET /metrics`).
//!
//! | metric | type | what |
//! |---|---|---|
//! | `ragchat_auth_failures_total{reason}` | counter | requests with no key (`missing`), a malformed header (`malformed`) or a key not in force (`unknown`) |
//! | `ragchat_auth_lockouts_total` | counter | sources locked out after repeated failures |
//! | `ragchat_auth_locked_refusals_total` | counter | requests refused because their source was locked out |
//! | `ragchat_rate_limited_total{limit}` | counter | requests refused by a key's `requests` per second or `turns` per minute |
//! | `ragchat_request_timeouts_total` | counter | requests that hit the per-request deadline |
//! | `ragchat_idempotent_replays_total` | counter | turns answered from the store for a repeated `Idempotency-Key` |

use metrics::Counter;

use crate::auth::identity::FailureReason;
use crate::ratelimit::Limit;

/// Handles to the edge's counters.
#[derive(Debug)]
pub struct EdgeMetrics {
    /// `missing`, `malformed`, `unknown`.
    auth_failures: [Counter; 3],
    lockouts: Counter,
    locked_refusals: Counter,
    /// `requests`, `turns`.
    rate_limited: [Counter; 2],
    timeouts: Counter,
    replays: Counter,
}

impl EdgeMetrics {
    /// Registers the counters with the recorder in scope (call inside
    /// `metrics::with_local_recorder`).
    pub(crate) fn register() -> Self {
        use metrics::{counter, describe_counter};
        describe_counter!(
            "ragchat_auth_failures_total",
            "Requests that did not authenticate, by reason: missing, malformed, unknown"
        );
        describe_counter!(
            "ragchat_auth_lockouts_total",
            "Source addresses locked out after repeated failed authentications"
        );
        describe_counter!(
            "ragchat_auth_locked_refusals_total",
            "Requests refused because their source address was locked out"
        );
        describe_counter!(
            "ragchat_rate_limited_total",
            "Requests refused by a key's rate limit: requests per second, turns per minute"
        );
        describe_counter!(
            "ragchat_request_timeouts_total",
            "Requests that hit the per-request deadline"
        );
        describe_counter!(
            "ragchat_idempotent_replays_total",
            "Turns answered from the store for a repeated Idempotency-Key"
        );
        EdgeMetrics {
            auth_failures: [
                FailureReason::Missing,
                FailureReason::Malformed,
                FailureReason::Unknown,
            ]
            .map(|r| counter!("ragchat_auth_failures_total", "reason" => r.as_str())),
            lockouts: counter!("ragchat_auth_lockouts_total"),
            locked_refusals: counter!("ragchat_auth_locked_refusals_total"),
            rate_limited: [Limit::Requests, Limit::Turns]
                .map(|l| counter!("ragchat_rate_limited_total", "limit" => l.as_str())),
            timeouts: counter!("ragchat_request_timeouts_total"),
            replays: counter!("ragchat_idempotent_replays_total"),
        }
    }

    /// A request that did not authenticate.
    pub fn auth_failure(&self, reason: FailureReason) {
        let i = match reason {
            FailureReason::Missing => 0,
            FailureReason::Malformed => 1,
            FailureReason::Unknown => 2,
        };
        self.auth_failures[i].increment(1);
    }

    /// A source locked out.
    pub fn lockout(&self) {
        self.lockouts.increment(1);
    }

    /// A request refused because its source is locked out.
    pub fn refused_locked_out(&self) {
        self.locked_refusals.increment(1);
    }

    /// A request refused by a rate limit.
    pub fn rate_limited(&self, limit: Limit) {
        let i = match limit {
            Limit::Requests => 0,
            Limit::Turns => 1,
        };
        self.rate_limited[i].increment(1);
    }

    /// A request that hit its deadline.
    pub fn request_timeout(&self) {
        self.timeouts.increment(1);
    }

    /// A turn replayed for a repeated idempotency key.
    pub fn idempotent_replay(&self) {
        self.replays.increment(1);
    }
}
