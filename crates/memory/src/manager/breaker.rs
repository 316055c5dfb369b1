//! A circuit breaker for the shared store, so that no chat turn waits on a store that
//! is known to be down.
//!
//! Closed: calls go through; `failure_threshold` consecutive failures open it.
//! Open: calls are refused at once until the backoff has passed; then one call (the
//! probe) goes through while the breaker is half-open. A successful probe closes the
//! breaker; a failed one opens it again with twice the backoff, up to `max_backoff`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker settings.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// First wait before probing again.
    pub base_backoff: Duration,
    /// Longest wait between probes.
    pub max_backoff: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 2,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant, backoff: Duration },
    HalfOpen { backoff: Duration, since: Instant },
}

/// See the module docs.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go to the store now.
    pub fn allow(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => true,
            State::Open { until, backoff } if now >= until => {
                *state = State::HalfOpen {
                    backoff,
                    since: now,
                };
                true
            }
            State::Open { .. } => false,
            // A probe that never reported back (its task was dropped) must not wedge the
            // breaker: after a backoff, allow another.
            State::HalfOpen { backoff, since }
                if now.duration_since(since) >= backoff.max(self.config.base_backoff) =>
            {
                *state = State::HalfOpen {
                    backoff,
                    since: now,
                };
                true
            }
            State::HalfOpen { .. } => false,
        }
    }

    /// The store answered.
    pub fn success(&self) {
        *self.lock() = State::Closed { failures: 0 };
    }

    /// The store failed to answer (unreachable or timed out).
    pub fn failure(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            State::Closed { .. } => State::Open {
                until: now + self.config.base_backoff,
                backoff: self.config.base_backoff,
            },
            State::HalfOpen { backoff, .. } | State::Open { backoff, .. } => {
                let backoff = (backoff * 2).min(self.config.max_backoff);
                State::Open {
                    until: now + backoff,
                    backoff,
                }
            }
        };
    }

    /// Whether the breaker is closed (the store is believed healthy).
    pub fn is_closed(&self) -> bool {
        matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            base_backoff: Duration::from_millis(40),
            max_backoff: Duration::from_millis(100),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_backoff() {
        let b = breaker();
        b.failure();
        assert!(b.allow() && b.is_closed(), "one failure keeps it closed");
        b.success();
        b.failure();
        assert!(b.is_closed(), "failures must be consecutive");
        b.failure();
        assert!(!b.is_closed());
        assert!(!b.allow(), "open: calls are refused");
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.allow(), "after the backoff one probe goes through");
        assert!(!b.allow(), "only one probe at a time");
        b.failure();
        std::thread::sleep(Duration::from_millis(45));
        assert!(!b.allow(), "the backoff doubled after a failed probe");
        std::thread::sleep(Duration::from_millis(45));
        assert!(b.allow());
        b.success();
        assert!(b.is_closed() && b.allow());
    }

    #[test]
    fn backoff_is_capped() {
        let b = breaker();
        for _ in 0..10 {
            b.failure();
        }
        std::thread::sleep(Duration::from_millis(105));
        assert!(b.allow());
    }
}
