//! `AppState`: what every handler shares (the engine, auth, metrics, the persistence
//! probe, the tracker of running turns, rate limits, failed authentications, the
//! readiness probe, idempotent turns in flight), and `ServerConfig`.

use std::sync::Arc;
use std::time::Duration;

use ragchat_engine::ChatEngine;
use ragchat_memory::SessionManager;
use tokio_util::task::TaskTracker;

use crate::about::About;
use crate::auth::failures::{AuthEvents, FailedAuths};
use crate::auth::{Auth, CallerState, Identity, LockoutConfig};
use crate::error::ApiError;
use crate::idempotency::InFlight;
use crate::limits::HttpLimits;
use crate::metrics::Metrics;
use crate::persistence::PersistenceProbe;
use crate::ratelimit::{RateLimitConfig, RateLimiter};
use crate::readiness::StoreProbe;
use crate::titles::TitleCache;

/// How many body bytes one byte of message may take: JSON may write any character as
/// `\uXXXX` escapes, six bytes for a one-byte character (and for the 2-4 bytes of any
/// other, at most twelve bytes for four), so a body this many times the message limit
/// holds any message at the limit however it is escaped.
pub const BODY_BYTES_PER_MESSAGE_BYTE: usize = 6;

/// Bytes a request body may have beyond [`BODY_BYTES_PER_MESSAGE_BYTE`] times the
/// message limit: the JSON envelope and whitespace.
pub const BODY_SLACK_BYTES: usize = 4096;

/// Default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How the HTTP server behaves, beyond the engine's own limits.
#[derive(Clone)]
pub struct ServerConfig {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// The store URL with its credentials, when the store is Redis: `/readyz` asks it
    /// how it persists. `None` reports `n/a`.
    pub redis_url: Option<String>,
    /// Time in-flight requests and turns get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Header-read, idle and per-request timeouts.
    pub limits: HttpLimits,
    /// Per-key rate limits (the keys file may override them per key).
    pub rate_limits: RateLimitConfig,
    /// When a source that keeps failing to authenticate is locked out.
    pub lockout: LockoutConfig,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The Redis URL carries the store's password: show it redacted.
        let redis_url = self
            .redis_url
            .as_deref()
            .map(ragchat_memory::store::redact_url);
        f.debug_struct("ServerConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("redis_url", &redis_url)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("limits", &self.limits)
            .field("rate_limits", &self.rate_limits)
            .field("lockout", &self.lockout)
            .finish()
    }
}

impl ServerConfig {
    /// The configuration for messages of at most `max_message_bytes` (the decoded
    /// content is what the limit applies to): bodies may be
    /// [`BODY_BYTES_PER_MESSAGE_BYTE`] times that plus [`BODY_SLACK_BYTES`], and a
    /// message over the limit is refused with 413 either way. Default timeouts, no rate
    /// limits, the default lockout.
    pub fn for_message_limit(max_message_bytes: usize) -> Self {
        ServerConfig {
            max_body_bytes: max_message_bytes
                .saturating_mul(BODY_BYTES_PER_MESSAGE_BYTE)
                .saturating_add(BODY_SLACK_BYTES),
            redis_url: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            limits: HttpLimits::default(),
            rate_limits: RateLimitConfig::UNLIMITED,
            lockout: LockoutConfig::DEFAULT,
        }
    }
}

/// Shared by every handler; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: ChatEngine,
    auth: Auth,
    metrics: Metrics,
    persistence: PersistenceProbe,
    turns: TaskTracker,
    config: ServerConfig,
    rate_limits: RateLimiter,
    auth_failures: FailedAuths,
    store_probe: StoreProbe,
    idempotency: InFlight,
    titles: TitleCache,
    about: tokio::sync::OnceCell<About>,
}

impl AppState {
    /// State for a server over `engine`, identifying callers with `auth`.
    pub fn new(engine: ChatEngine, auth: Auth, config: ServerConfig) -> Self {
        let persistence = match &config.redis_url {
            // The server's own store answers (its connection; no second one opened).
            Some(_) => PersistenceProbe::for_store(
                engine.memory().store().clone(),
                engine.memory().config().store_timeout,
            ),
            None => PersistenceProbe::not_applicable(),
        };
        AppState {
            inner: Arc::new(Inner {
                engine,
                auth,
                metrics: Metrics::new(),
                persistence,
                turns: TaskTracker::new(),
                rate_limits: RateLimiter::new(config.rate_limits),
                auth_failures: FailedAuths::new(config.lockout),
                store_probe: StoreProbe::default(),
                idempotency: InFlight::default(),
                config,
                titles: TitleCache::default(),
                about: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The chat engine.
    pub fn engine(&self) -> &ChatEngine {
        &self.inner.engine
    }

    /// Conversation memory.
    pub fn memory(&self) -> &SessionManager {
        self.inner.engine.memory()
    }

    /// How callers are identified.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The Redis persistence probe.
    pub fn persistence(&self) -> &PersistenceProbe {
        &self.inner.persistence
    }

    /// Chat turns run as tasks on this tracker, so a client that goes away does not
    /// abort a turn halfway and shutdown can wait for every turn to be stored.
    pub fn turns(&self) -> &TaskTracker {
        &self.inner.turns
    }

    /// Conversation titles already read, for the session list.
    pub fn titles(&self) -> &TitleCache {
        &self.inner.titles
    }

    /// What the server answers from, once computed (`GET /v1/about`).
    pub fn about(&self) -> &tokio::sync::OnceCell<About> {
        &self.inner.about
    }

    /// The server configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Per-key rate limits.
    pub fn rate_limits(&self) -> &RateLimiter {
        &self.inner.rate_limits
    }

    /// Failed authentications per source, and lockouts.
    pub fn auth_failures(&self) -> &FailedAuths {
        &self.inner.auth_failures
    }

    /// The readiness probe's last answer from the store.
    pub fn store_probe(&self) -> &StoreProbe {
        &self.inner.store_probe
    }

    /// Idempotent turns in flight on this server.
    pub fn idempotency(&self) -> &InFlight {
        &self.inner.idempotency
    }

    /// Longest accepted message content, in bytes (the memory crate's limit).
    pub fn max_message_bytes(&self) -> usize {
        self.engine().max_message_bytes()
    }
}

/// What the `Caller` extractor needs: the keys, failed authentications, the metrics
/// they count in, and the per-key request rate.
impl CallerState for AppState {
    fn auth(&self) -> &Auth {
        AppState::auth(self)
    }

    fn auth_failures(&self) -> &FailedAuths {
        AppState::auth_failures(self)
    }

    fn auth_events(&self) -> &dyn AuthEvents {
        self.metrics()
    }

    fn check_request_rate(&self, identity: &Identity) -> Result<(), ApiError> {
        self.rate_limits().check_request(identity, self.metrics())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_store_password() {
        let mut config = ServerConfig::for_message_limit(1000);
        config.redis_url = Some("redis://:s3cret@redis.internal:6379/0".into());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("redis.internal"),
            "{shown}"
        );
        assert_eq!(config.max_body_bytes, 6 * 1000 + BODY_SLACK_BYTES);
    }
}
