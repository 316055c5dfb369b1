//! How a [`TieredStore`] is set up: when the archive is written ([`ArchiveMode`]), its
//! settings ([`TierConfig`]), and opening Redis with an archive by URL ([`open_tiered`]).

use std::sync::Arc;
use std::time::Duration;

use super::TieredStore;
use crate::backend::redis::RedisStore;
use crate::error::{MemoryError, Result};
use crate::limits::ReadLimit;
use crate::store::{StoreKind, Ttl};

/// When the archive is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchiveMode {
    /// Behind the acknowledgement, in batches (the default): a turn costs what it costs
    /// on Redis alone; Redis's own persistence covers the moments in between.
    #[default]
    WriteBehind,
    /// Before the acknowledgement: for Redis without persistence; each turn waits for
    /// the archive.
    Sync,
}

impl std::str::FromStr for ArchiveMode {
    type Err = MemoryError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "write-behind" | "behind" | "async" => Ok(ArchiveMode::WriteBehind),
            "sync" => Ok(ArchiveMode::Sync),
            other => Err(MemoryError::invalid(format!(
                "unknown archive mode {other:?}: use write-behind or sync"
            ))),
        }
    }
}

/// Settings of a [`TieredStore`].
#[derive(Clone, Debug)]
pub struct TierConfig {
    /// When the archive is written.
    pub mode: ArchiveMode,
    /// The hot tier's TTL, given back to a session once it is archived.
    pub ttl: Ttl,
    /// The archive keeps at most this many messages per session, like the hot tier
    /// (0 = unbounded).
    pub max_messages: u64,
    /// How long the archiver lets a burst of appends gather before writing.
    pub batch_delay: Duration,
    /// How often Redis is walked for sessions the archive is behind on (crash
    /// recovery: what another process acknowledged and did not archive), the first
    /// time at start; `None` for short-lived processes (CLI commands), which archive
    /// what they wrote themselves ([`TieredStore::flush`]).
    pub sweep_every: Option<Duration>,
    /// Lifetime of a session's archive lock (a holder that dies frees it after this).
    pub lock: Duration,
    /// Wait before writing again after the archive failed.
    pub retry_after: Duration,
    /// Entries one archiver round reads from one session.
    pub claim_limit: ReadLimit,
    /// The newest entries a rehydration puts back into Redis (older ones are read from
    /// the archive when someone pages back to them).
    pub restore_limit: ReadLimit,
    /// Sessions archived at once.
    pub concurrency: usize,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            mode: ArchiveMode::WriteBehind,
            ttl: Ttl::secs(3600),
            max_messages: 0,
            batch_delay: Duration::from_millis(50),
            sweep_every: Some(Duration::from_secs(30)),
            lock: Duration::from_secs(5),
            retry_after: Duration::from_secs(1),
            claim_limit: ReadLimit::new(512, 4 << 20),
            restore_limit: ReadLimit::new(2000, 8 << 20),
            concurrency: 8,
        }
    }
}

/// Opens Redis at `hot_url` with the archive at `archive_url` behind it (both opened
/// with `opts`; the archive lazily, so that a server starts while it is down).
///
/// # Errors
/// `InvalidInput` when `hot_url` is not a Redis URL or `archive_url` is not
/// `sqlite://` or `postgres://`; `Unavailable` as opening either store.
pub async fn open_tiered(
    hot_url: &str,
    archive_url: &str,
    opts: &crate::spec::StoreOptions,
    config: TierConfig,
) -> Result<Arc<TieredStore>> {
    let hot_spec = crate::spec::parse_store_url(hot_url)?;
    if hot_spec.kind() != StoreKind::Redis {
        return Err(MemoryError::invalid(format!(
            "an archive goes behind a Redis store (redis://, rediss://, redis+cluster://), \
             not {}",
            crate::spec::redact_url(hot_url)
        )));
    }
    let archive_spec = crate::spec::parse_store_url(archive_url)?;
    if !matches!(archive_spec.kind(), StoreKind::Sqlite | StoreKind::Postgres) {
        return Err(MemoryError::invalid(format!(
            "an archive must be sqlite://PATH or postgres://..., not {}",
            crate::spec::redact_url(archive_url)
        )));
    }
    let hot = RedisStore::connect(hot_url, opts).await?;
    // The archive is written off the request path, in batches: it gets more time per
    // command than the hot tier, whose timeout bounds a turn.
    let archive_opts = crate::spec::StoreOptions {
        lazy: true,
        connect_timeout: opts.connect_timeout.max(Duration::from_secs(5)),
        command_timeout: opts.command_timeout.max(Duration::from_secs(5)),
        ..opts.clone()
    };
    let archive = crate::backend::open_spec(archive_spec, &archive_opts).await?;
    // Connect (and migrate) now if the archive answers, so the first rehydration does
    // not pay for it; a down archive is not an error (Redis keeps everything meanwhile).
    match tokio::time::timeout(archive_opts.connect_timeout, archive.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(archive = %archive.describe(), error = %e, "the archive is not answering yet")
        }
        Err(_) => tracing::warn!(archive = %archive.describe(), "the archive is not answering yet"),
    }
    Ok(Arc::new(TieredStore::new(hot, archive, config)?))
}
