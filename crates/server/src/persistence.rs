//! Whether the shared Redis keeps anything on disk, for `/readyz` and a startup warning.
//!
//! Conversations are only as durable as the store: a Redis with neither an append-only
//! file nor snapshots loses every conversation when it restarts. The probe opens its own
//! short-lived connection (the store's pooled one is not exposed, and this runs rarely),
//! reads `CONFIG GET appendonly` and `CONFIG GET save`, and falls back to `INFO
//! persistence` where `CONFIG` is disabled (managed Redis). Answers are cached for
//! [`CACHE_FOR`]; while Redis is unreachable the last known answer is reported.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;
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
    client: Option<redis::Client>,
    timeout: Duration,
    last: Mutex<Option<(Instant, RedisPersistence)>>,
}

impl PersistenceProbe {
    /// A probe for the store at `url` (with its password, if any: the probe logs in
    /// like the store does). Non-Redis URLs, and URLs the Redis client cannot parse,
    /// give a probe that answers `n/a`.
    pub fn for_store_url(url: &str, timeout: Duration) -> Self {
        let is_redis = url.starts_with("redis://") || url.starts_with("rediss://");
        let client = is_redis.then(|| redis::Client::open(url).ok()).flatten();
        PersistenceProbe {
            client,
            timeout,
            last: Mutex::new(None),
        }
    }

    /// A probe that always answers `n/a`.
    pub fn not_applicable() -> Self {
        PersistenceProbe {
            client: None,
            timeout: Duration::ZERO,
            last: Mutex::new(None),
        }
    }

    /// How the store persists (cached for [`CACHE_FOR`]).
    pub async fn check(&self) -> RedisPersistence {
        let Some(client) = &self.client else {
            return RedisPersistence::NotApplicable;
        };
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last {
            if at.elapsed() < CACHE_FOR {
                return answer;
            }
        }
        match tokio::time::timeout(self.timeout * 2, query(client)).await {
            Ok(Ok(answer)) => {
                *last = Some((Instant::now(), answer));
                answer
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot read the Redis persistence settings");
                last.map_or(RedisPersistence::Unknown, |(_, answer)| answer)
            }
            Err(_) => last.map_or(RedisPersistence::Unknown, |(_, answer)| answer),
        }
    }
}

async fn query(client: &redis::Client) -> redis::RedisResult<RedisPersistence> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let config: redis::RedisResult<(Vec<String>, Vec<String>)> = redis::pipe()
        .cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query_async(&mut conn)
        .await;
    if let Ok((appendonly, save)) = config {
        if let (Some(appendonly), Some(save)) = (appendonly.get(1), save.get(1)) {
            return Ok(from_config(appendonly, save));
        }
    }
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut conn)
        .await?;
    Ok(from_info(&info))
}

/// Classifies `CONFIG GET appendonly` / `CONFIG GET save` values.
fn from_config(appendonly: &str, save: &str) -> RedisPersistence {
    if appendonly.eq_ignore_ascii_case("yes") {
        RedisPersistence::Aof
    } else if save.trim().is_empty() {
        RedisPersistence::None
    } else {
        RedisPersistence::Rdb
    }
}

/// Classifies `INFO persistence`, which shows the AOF but not the snapshot schedule.
fn from_info(info: &str) -> RedisPersistence {
    let aof = info.lines().any(|l| l.trim() == "aof_enabled:1");
    if aof {
        RedisPersistence::Aof
    } else {
        RedisPersistence::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_settings() {
        assert_eq!(from_config("yes", ""), RedisPersistence::Aof);
        assert_eq!(from_config("no", "3600 1 300 100"), RedisPersistence::Rdb);
        assert_eq!(from_config("no", ""), RedisPersistence::None);
        assert_eq!(
            from_info("# Persistence\r\nloading:0\r\naof_enabled:1\r\n"),
            RedisPersistence::Aof
        );
        assert_eq!(from_info("aof_enabled:0\r\n"), RedisPersistence::Unknown);
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
