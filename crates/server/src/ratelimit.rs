//! Per-key rate limits: requests per second on every `/v1` route, chat turns per
//! minute on `POST /v1/sessions/{session}/messages`.
//!
//! Each key has a token bucket per limit: it holds up to the limit (a second's worth
//! of requests, a minute's worth of turns, so bursts up to the limit pass) and refills
//! continuously. A request that finds its bucket empty is refused with
//! `429 rate_limited` and a `Retry-After` of the seconds until a token is back. Limits
//! come from the server's configuration, overridden per key by the keys file; 0 means
//! unlimited. Without a keys file every request shares the one bucket of the local
//! user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{Caller, Identity, KeyLimits};
use crate::error::ApiError;

/// Buckets kept before idle full ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// The server-wide limits, per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Chat turns a key may start per minute (0 = unlimited).
    pub turns_per_minute: u32,
    /// Requests a key may make per second (0 = unlimited).
    pub requests_per_second: u32,
}

impl RateLimitConfig {
    /// No limits (the library's default; `ragchat serve` sets its own defaults).
    pub const UNLIMITED: RateLimitConfig = RateLimitConfig {
        turns_per_minute: 0,
        requests_per_second: 0,
    };
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// Where refusals are reported: the server's metrics (`ragchat_rate_limited_total`).
/// Implemented by the metrics, so this module does not depend on them.
pub trait RateLimitEvents: Send + Sync {
    /// A request refused by a rate limit.
    fn rate_limited(&self, limit: Limit);
}

/// Which limit a bucket enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Requests per second.
    Requests,
    /// Chat turns per minute.
    Turns,
}

impl Limit {
    /// The `limit` label of `ragchat_rate_limited_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Requests => "requests",
            Limit::Turns => "turns",
        }
    }

    fn period(self) -> Duration {
        match self {
            Limit::Requests => Duration::from_secs(1),
            Limit::Turns => Duration::from_secs(60),
        }
    }
}

/// A key (its SHA-256; `None` for the local user) and one of its limits.
type BucketKey = (Option<[u8; 32]>, Limit);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The buckets of every key.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<HashMap<BucketKey, Bucket>>,
}

impl RateLimiter {
    /// Buckets for these server-wide limits.
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The server-wide limits.
    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    /// Takes a request token for the caller's key.
    ///
    /// # Errors
    /// `429 rate_limited` with `Retry-After` when the key is over its requests per
    /// second.
    pub fn check_request(
        &self,
        who: &Identity,
        events: &dyn RateLimitEvents,
    ) -> Result<(), ApiError> {
        let limit = effective(
            who.limits.requests_per_second,
            self.config.requests_per_second,
        );
        self.take(who.key, Limit::Requests, limit, events)
    }

    /// Takes a turn token for the caller's key.
    ///
    /// # Errors
    /// `429 rate_limited` with `Retry-After` when the key is over its turns per minute.
    pub fn check_turn(
        &self,
        caller: &Caller,
        events: &dyn RateLimitEvents,
    ) -> Result<(), ApiError> {
        let limit = effective(caller.limits.turns_per_minute, self.config.turns_per_minute);
        self.take(caller.key, Limit::Turns, limit, events)
    }

    fn take(
        &self,
        key: Option<[u8; 32]>,
        which: Limit,
        limit: u32,
        events: &dyn RateLimitEvents,
    ) -> Result<(), ApiError> {
        if limit == 0 {
            return Ok(());
        }
        let capacity = f64::from(limit);
        let per_second = capacity / which.period().as_secs_f64();
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            prune(&mut buckets, now);
        }
        let bucket = buckets.entry((key, which)).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let refilled = now.duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_second);
        drop(buckets);
        events.rate_limited(which);
        let what = match which {
            Limit::Requests => format!("{limit} requests per second"),
            Limit::Turns => format!("{limit} chat turns per minute"),
        };
        Err(ApiError::too_many_requests(
            "rate_limited",
            format!("this API key is limited to {what}; try again shortly"),
            wait,
        ))
    }
}

/// The key's own limit when the keys file sets one, else the server's.
fn effective(own: Option<u32>, server: u32) -> u32 {
    own.unwrap_or(server)
}

/// Drops buckets that have been idle long enough to be full again: they hold nothing
/// a new bucket would not.
fn prune(buckets: &mut HashMap<BucketKey, Bucket>, now: Instant) {
    buckets.retain(|(_, which), b| now.duration_since(b.updated) < which.period());
}

impl KeyLimits {
    /// Whether the keys file sets any limit for this key.
    pub fn is_set(&self) -> bool {
        self.turns_per_minute.is_some() || self.requests_per_second.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn identity(key: u8, limits: KeyLimits) -> Identity {
        Identity {
            user: "u".into(),
            key: Some([key; 32]),
            limits,
        }
    }

    /// Requests `who` gets through before the first refusal, and the most a limit of
    /// `per_second` allows in the time that took (the burst plus what refilled).
    fn burst(limiter: &RateLimiter, who: &Identity, per_second: f64) -> (u32, u32) {
        let metrics = Metrics::new();
        let started = Instant::now();
        let mut passed = 0;
        while limiter.check_request(who, &metrics).is_ok() {
            passed += 1;
            assert!(passed < 10_000, "never refused");
        }
        let refill = (started.elapsed().as_secs_f64() * per_second).ceil() as u32;
        (passed, per_second as u32 + refill)
    }

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let metrics = Metrics::new();
        let limiter = RateLimiter::new(RateLimitConfig {
            turns_per_minute: 0,
            requests_per_second: 3,
        });
        let alice = identity(1, KeyLimits::default());
        let (passed, most) = burst(&limiter, &alice, 3.0);
        assert!(
            (3..=most).contains(&passed),
            "{passed} passed, at most {most}"
        );
        let refused = limiter.check_request(&alice, &metrics).unwrap_err();
        assert_eq!(refused.status().as_u16(), 429);
        assert_eq!(refused.code(), "rate_limited");
        assert!(
            refused.message().contains("3 requests per second"),
            "{refused}"
        );
        assert!(metrics
            .render()
            .contains("ragchat_rate_limited_total{limit=\"requests\"} 1"));
        // Another key has its own bucket.
        limiter
            .check_request(&identity(2, KeyLimits::default()), &metrics)
            .unwrap();
    }

    #[test]
    fn the_keys_file_overrides_the_server_limit() {
        let metrics = Metrics::new();
        let limiter = RateLimiter::new(RateLimitConfig {
            turns_per_minute: 1,
            requests_per_second: 1,
        });
        let unlimited = identity(
            1,
            KeyLimits {
                turns_per_minute: None,
                requests_per_second: Some(0),
            },
        );
        for _ in 0..50 {
            limiter.check_request(&unlimited, &metrics).unwrap();
        }
        let strict = identity(
            2,
            KeyLimits {
                turns_per_minute: None,
                requests_per_second: Some(2),
            },
        );
        let (passed, most) = burst(&limiter, &strict, 2.0);
        assert!(
            (2..=most).contains(&passed),
            "{passed} passed, at most {most}"
        );
    }

    #[test]
    fn tokens_come_back_over_time() {
        let metrics = Metrics::new();
        let limiter = RateLimiter::new(RateLimitConfig {
            turns_per_minute: 0,
            requests_per_second: 1000,
        });
        let alice = identity(1, KeyLimits::default());
        while limiter.check_request(&alice, &metrics).is_ok() {}
        std::thread::sleep(Duration::from_millis(20));
        limiter.check_request(&alice, &metrics).unwrap();
    }
}
