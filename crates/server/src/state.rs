//! `AppState`: what every handler shares (the engine, auth, metrics, the persistence
//! probe, the tracker of running turns), and `ServerConfig`.

use std::sync::Arc;
use std::time::Duration;

use ragchat_memory::SessionManager;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::engine::ChatEngine;
use crate::metrics::Metrics;
use crate::persistence::PersistenceProbe;
use crate::routes::about::About;
use crate::titles::TitleCache;

/// Bytes a request body may add to the message limit: the JSON envelope, and escapes
/// (`\n`, `\"`, `\u00e9`) that make the encoded text longer than the text.
pub const BODY_SLACK_BYTES: usize = 4096;

/// Default time in-flight requests get to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How the HTTP server behaves, beyond the engine's own limits.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// The store URL with its credentials, when the store is Redis: `/readyz` asks it
    /// how it persists. `None` reports `n/a`.
    pub redis_url: Option<String>,
    /// Time in-flight requests and turns get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// The configuration for messages of at most `max_message_bytes`: bodies may be
    /// twice that (escaping) plus [`BODY_SLACK_BYTES`]; a message over the limit is
    /// refused with 413 either way.
    pub fn for_message_limit(max_message_bytes: usize) -> Self {
        ServerConfig {
            max_body_bytes: max_message_bytes
                .saturating_mul(2)
                .saturating_add(BODY_SLACK_BYTES),
            redis_url: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
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
    titles: TitleCache,
    about: tokio::sync::OnceCell<About>,
}

impl AppState {
    /// State for a server over `engine`, identifying callers with `auth`.
    pub fn new(engine: ChatEngine, auth: Auth, config: ServerConfig) -> Self {
        let persistence = match &config.redis_url {
            Some(url) => {
                PersistenceProbe::for_store_url(url, engine.memory().config().store_timeout)
            }
            None => PersistenceProbe::not_applicable(),
        };
        AppState {
            inner: Arc::new(Inner {
                engine,
                auth,
                metrics: Metrics::new(),
                persistence,
                turns: TaskTracker::new(),
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

    /// Longest accepted message content, in bytes (the memory crate's limit).
    pub fn max_message_bytes(&self) -> usize {
        self.memory().config().max_content_bytes
    }
}
