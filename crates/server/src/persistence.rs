//! Whether the shared Redis keeps anything on disk, for `/readyz` and a startup warning.
//!
//! Conversations are only as durable as the store: a Redis with neither an append-only
//! file nor snapshots loses every conversation when it restarts. The store reports what
//! it keeps ([`SessionStore::durability`]: `CONFIG GET`, or `INFO persistence` where
//! `CONFIG` is disabled, on a single Redis or a cluster alike); this module turns that
//! into the `/readyz` field. Answers are cached for [`CACHE_FOR`]; while Redis is
//! unreachable the last known answer is reported.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ragchat_memory::{
    is_remote_url, open_store, Durability, RedisDurability, SessionStore, StoreKind, StoreOptions,
};
use serde::Serialize;
use tokio::sync::{Mutex, OnceCell};
use utoipa::ToSchema;

/// How long a probe's answer is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(30);

/// What the store keeps on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub enum RedisPersistence {
    /// An append-only file (loses at most `appendfsync`'s window on a crash).
    #[serde(rename = "aof")]
    Aof,
    /// RDB snapshots only (loses what came after the last snapshot).
    #[serde(rename = "rdb")]
    Rdb,
    /// Nothing: a Redis restart loses every conversation.
    #[serde(rename = "none")]
    None,
    /// The store is not Redis.
    #[serde(rename = "n/a")]
    NotApplicable,
    /// Redis did not say (unreachable since start, or `CONFIG` and `INFO` refused).
    #[serde(rename = "unknown")]
    Unknown,
}

impl RedisPersistence {
    /// The name used in `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            RedisPersistence::Aof => "aof",
            RedisPersistence::Rdb => "rdb",
            RedisPersistence::None => "none",
            RedisPersistence::NotApplicable => "n/a",
            RedisPersistence::Unknown => "unknown",
        }
    }
}

/// Asks a Redis store how it persists; answers `n/a` for other stores.
#[derive(Debug)]
pub struct PersistenceProbe {
    source: Source,
    timeout: Duration,
    last: Mutex<Option<(Instant, RedisPersistence)>>,
}

/// Where the probe gets its store.
#[derive(Debug)]
enum Source {
    /// Not Redis: always `n/a`.
    None,
    /// The store the server uses.
    Store(Arc<dyn SessionStore>),
    /// A store URL, opened (lazily, without a heartbeat) on the first check.
    Url(String, OnceCell<Option<Arc<dyn SessionStore>>>),
}

impl PersistenceProbe {
    /// A probe that asks `store` (its own connection; nothing else is opened).
    pub fn for_store(store: Arc<dyn SessionStore>, timeout: Duration) -> Self {
        PersistenceProbe::with(Source::Store(store), timeout)
    }

    /// A probe for the store at `url` (with its password, if any: the probe logs in
    /// like the store does). URLs of stores that are not Redis, and URLs that do not
    /// parse, give a probe that answers `n/a`. Prefer [`PersistenceProbe::for_store`]
    /// with the server's own store, which needs no second connection.
    pub fn for_store_url(url: &str, timeout: Duration) -> Self {
        let source = if is_remote_url(url) {
            Source::Url(url.to_string(), OnceCell::new())
        } else {
            Source::None
        };
        PersistenceProbe::with(source, timeout)
    }

    /// A probe that always answers `n/a`.
    pub fn not_applicable() -> Self {
        PersistenceProbe::with(Source::None, Duration::ZERO)
    }

    fn with(source: Source, timeout: Duration) -> Self {
        PersistenceProbe {
            source,
            timeout,
            last: Mutex::new(None),
        }
    }

    /// The store to ask, if it is Redis.
    async fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        let store = match &self.source {
            Source::None => return None,
            Source::Store(store) => store,
            Source::Url(url, opened) => opened
                .get_or_init(|| async {
                    let opts = StoreOptions {
                        connect_timeout: self.timeout,
                        command_timeout: self.timeout,
                        lazy: true,
                        heartbeat: Duration::ZERO,
                        ..StoreOptions::default()
                    };
                    open_store(url, &opts).await.ok()
                })
                .await
                .as_ref()?,
        };
        (store.kind() == StoreKind::Redis).then_some(store)
    }

    /// How the store persists (cached for [`CACHE_FOR`]).
    pub async fn check(&self) -> RedisPersistence {
        let Some(store) = self.store().await else {
            return RedisPersistence::NotApplicable;
        };
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < CACHE_FOR {
                return answer;
            }
        }
        match tokio::time::timeout(self.timeout * 2, store.durability()).await {
            Ok(Durability::Redis(report)) => {
                let answer = classify(&report);
                *last = Some((Instant::now(), answer));
                answer
            }
            Ok(other) => {
                tracing::debug!(durability = ?other, "cannot read the Redis persistence settings");
                last.map_or(RedisPersistence::Unknown, |(_, answer)| answer)
            }
            Err(_) => last.map_or(RedisPersistence::Unknown, |(_, answer)| answer),
        }
    }
}

/// Classifies what Redis said: an append-only file wins; without one, an empty `save`
/// means nothing is kept, and an unknown `save` (only `INFO` answered) is unknown.
fn classify(report: &RedisDurability) -> RedisPersistence {
    match (report.appendonly, report.save.as_deref()) {
        (Some(true), _) => RedisPersistence::Aof,
        (Some(false), Some(save)) if save.trim().is_empty() => RedisPersistence::None,
        (Some(false), Some(_)) => RedisPersistence::Rdb,
        _ => RedisPersistence::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(appendonly: &str, save: &str) -> RedisDurability {
        RedisDurability {
            appendonly: Some(appendonly == "yes"),
            appendfsync: Some("everysec".into()),
            save: Some(save.into()),
        }
    }

    /// What `INFO persistence` alone tells (the snapshot schedule is not in it).
    fn info(aof_enabled: bool) -> RedisDurability {
        RedisDurability {
            appendonly: Some(aof_enabled),
            ..RedisDurability::default()
        }
    }

    #[test]
    fn classifies_settings() {
        assert_eq!(classify(&config("yes", "")), RedisPersistence::Aof);
        assert_eq!(
            classify(&config("no", "3600 1 300 100")),
            RedisPersistence::Rdb
        );
        assert_eq!(classify(&config("no", "")), RedisPersistence::None);
        assert_eq!(classify(&info(true)), RedisPersistence::Aof);
        assert_eq!(classify(&info(false)), RedisPersistence::Unknown);
        assert_eq!(
            classify(&RedisDurability::default()),
            RedisPersistence::Unknown
        );
    }

    #[tokio::test]
    async fn other_stores_are_not_applicable() {
        let probe =
            PersistenceProbe::for_store_url("sqlite:///tmp/x.db", Duration::from_millis(50));
        assert_eq!(probe.check().await, RedisPersistence::NotApplicable);
    }

    #[tokio::test]
    async fn reads_a_real_redis() {
        let Some(redis) = ragchat_testkit::RedisServer::builder()
            .appendonly(true)
            .start_or_skip()
        else {
            return;
        };
        let probe = PersistenceProbe::for_store_url(&redis.url(), Duration::from_millis(500));
        assert_eq!(probe.check().await, RedisPersistence::Aof);
        redis.cli(&["CONFIG", "SET", "appendonly", "no"]);
        redis.cli(&["CONFIG", "SET", "save", ""]);
        // Cached: the answer stands until CACHE_FOR passes.
        assert_eq!(probe.check().await, RedisPersistence::Aof);
        let fresh = PersistenceProbe::for_store_url(&redis.url(), Duration::from_millis(500));
        assert_eq!(fresh.check().await, RedisPersistence::None);
    }
}
