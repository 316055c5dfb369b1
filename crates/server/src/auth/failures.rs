//! Failed authentications: counted per source address, logged at a bounded rate, and
//! a short lockout for a source that keeps failing.
//!
//! A source (the peer's IP address) that fails [`LockoutConfig::max_failures`] times
//! within [`LockoutConfig::window`] is refused for [`LockoutConfig::lockout`] with
//! `429 auth_locked` and `Retry-After`, whatever key it sends then, so guessing keys
//! costs a pause every few tries. Behind a reverse proxy every request comes from the
//! proxy's address: set the threshold higher, or to 0 (off), there.
//!
//! Every failure is counted in `ragchat_auth_failures_total{reason}`; the log gets at
//! most one line per [`LOG_EVERY`] (with the count since the last line), and one per
//! lockout, so a flood of bad keys cannot flood the log.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;

pub use super::identity::FailureReason;
use super::identity::{Auth, Identity};
use crate::error::ApiError;

/// At most one log line about failed authentications per this long.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// Sources tracked at once; beyond it the oldest are forgotten.
const MAX_SOURCES: usize = 100_000;

/// Where failed authentications and lockouts are reported: the server's metrics
/// (`ragchat_auth_*`). Implemented by the metrics, so this module does not depend on them.
pub trait AuthEvents: Send + Sync {
    /// A request that did not authenticate.
    fn auth_failure(&self, reason: FailureReason);
    /// A source locked out.
    fn lockout(&self);
    /// A request refused because its source is locked out.
    fn refused_locked_out(&self);
}

/// When a source is locked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutConfig {
    /// Failures within `window` that lock a source out (0 = never).
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
    /// How long a locked-out source is refused.
    pub lockout: Duration,
}

impl LockoutConfig {
    /// 20 failures within a minute lock a source out for a minute.
    pub const DEFAULT: LockoutConfig = LockoutConfig {
        max_failures: 20,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(60),
    };

    /// Never lock anyone out (failures are still counted and logged).
    pub const OFF: LockoutConfig = LockoutConfig {
        max_failures: 0,
        ..Self::DEFAULT
    };
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where a request came from: the peer's IP address, when the server knows it (a
/// request sent to the router without a socket has none; such requests share one
/// entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(pub Option<IpAddr>);

impl Source {
    /// The source of a request, from the connection info the listener attaches.
    pub fn of(parts: &Parts) -> Source {
        Source(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Source::of(parts))
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

#[derive(Debug)]
struct SourceState {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug)]
struct LogState {
    last: Option<Instant>,
    unlogged: u64,
}

/// Failed authentications per source, and the lockouts they cause.
#[derive(Debug)]
pub struct FailedAuths {
    config: LockoutConfig,
    sources: Mutex<HashMap<Source, SourceState>>,
    log: Mutex<LogState>,
}

impl FailedAuths {
    /// A tracker with this lockout policy.
    pub fn new(config: LockoutConfig) -> Self {
        FailedAuths {
            config,
            sources: Mutex::new(HashMap::new()),
            log: Mutex::new(LogState {
                last: None,
                unlogged: 0,
            }),
        }
    }

    /// Authenticates a request with `auth`, refusing a locked-out source first and
    /// counting a failure against the source.
    ///
    /// # Errors
    /// `429 auth_locked` (with `Retry-After`) for a locked-out source; `401` for a
    /// missing, malformed or unknown key.
    pub fn authenticate(
        &self,
        auth: &Auth,
        headers: &HeaderMap,
        source: Source,
        events: &dyn AuthEvents,
    ) -> Result<Identity, ApiError> {
        if !auth.requires_key() {
            return auth.authenticate(headers).map_err(ApiError::from);
        }
        if let Some(wait) = self.locked_for(source) {
            events.refused_locked_out();
            return Err(ApiError::too_many_requests(
                "auth_locked",
                "too many failed authentications from this address; try again later",
                wait,
            ));
        }
        auth.authenticate(headers).map_err(|failure| {
            self.record(source, failure.reason, events);
            ApiError::from(failure)
        })
    }

    /// How long `source` is still locked out, if it is.
    pub fn locked_for(&self, source: Source) -> Option<Duration> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let until = sources.get(&source)?.locked_until?;
        until.checked_duration_since(Instant::now())
    }

    /// Counts a failure of `source`; locks it out when it reaches the threshold.
    pub fn record(&self, source: Source, reason: FailureReason, events: &dyn AuthEvents) {
        events.auth_failure(reason);
        let now = Instant::now();
        let locked = {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            if sources.len() >= MAX_SOURCES && !sources.contains_key(&source) {
                forget_oldest(&mut sources, self.config, now);
            }
            let state = sources.entry(source).or_insert(SourceState {
                window_start: now,
                failures: 0,
                locked_until: None,
            });
            if now.duration_since(state.window_start) > self.config.window {
                state.window_start = now;
                state.failures = 0;
            }
            state.failures = state.failures.saturating_add(1);
            let max = self.config.max_failures;
            if max > 0 && state.failures >= max && state.locked_until.is_none_or(|t| t <= now) {
                state.locked_until = Some(now + self.config.lockout);
                state.window_start = now;
                state.failures = 0;
                true
            } else {
                false
            }
        };
        if locked {
            events.lockout();
            tracing::warn!(
                %source,
                failures = self.config.max_failures,
                lockout = ?self.config.lockout,
                "repeated failed authentications: refusing this address for a while"
            );
        }
        self.log_failure(source, reason, now);
    }

    fn log_failure(&self, source: Source, reason: FailureReason, now: Instant) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.unlogged += 1;
        if log.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            return;
        }
        tracing::warn!(
            %source,
            reason = reason.as_str(),
            failures = log.unlogged,
            "failed API key authentication (failures since the last such line; at most one line every {LOG_EVERY:?})"
        );
        log.last = Some(now);
        log.unlogged = 0;
    }
}

/// Drops sources that are neither locked out nor inside their window; if none is,
/// the one whose window started first.
fn forget_oldest(sources: &mut HashMap<Source, SourceState>, config: LockoutConfig, now: Instant) {
    sources.retain(|_, s| {
        s.locked_until.is_some_and(|t| t > now)
            || now.duration_since(s.window_start) <= config.window
    });
    if sources.len() >= MAX_SOURCES {
        if let Some(oldest) = sources
            .iter()
            .min_by_key(|(_, s)| s.window_start)
            .map(|(k, _)| *k)
        {
            sources.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn source(last: u8) -> Source {
        Source(Some(IpAddr::from([10, 0, 0, last])))
    }

    #[test]
    fn a_source_that_keeps_failing_is_locked_out_alone() {
        let metrics = Metrics::new();
        let failures = FailedAuths::new(LockoutConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(30),
        });
        for _ in 0..2 {
            failures.record(source(1), FailureReason::Unknown, &metrics);
        }
        assert_eq!(failures.locked_for(source(1)), None);
        failures.record(source(1), FailureReason::Missing, &metrics);
        let wait = failures.locked_for(source(1)).expect("locked out");
        assert!(wait <= Duration::from_secs(30) && wait > Duration::from_secs(20));
        assert_eq!(
            failures.locked_for(source(2)),
            None,
            "other sources are not"
        );
        let text = metrics.render();
        assert!(
            text.contains("ragchat_auth_failures_total{reason=\"unknown\"} 2"),
            "{text}"
        );
        assert!(text.contains("ragchat_auth_lockouts_total 1"), "{text}");
    }

    #[test]
    fn a_short_lockout_ends() {
        let metrics = Metrics::new();
        let failures = FailedAuths::new(LockoutConfig {
            max_failures: 1,
            window: Duration::from_secs(60),
            lockout: Duration::from_millis(1),
        });
        failures.record(source(1), FailureReason::Unknown, &metrics);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(failures.locked_for(source(1)), None);
    }

    #[test]
    fn off_never_locks_out() {
        let metrics = Metrics::new();
        let failures = FailedAuths::new(LockoutConfig::OFF);
        for _ in 0..100 {
            failures.record(source(1), FailureReason::Unknown, &metrics);
        }
        assert_eq!(failures.locked_for(source(1)), None);
    }
}
