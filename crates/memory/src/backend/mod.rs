//! Storage backends. Each keeps the `SessionStore` contract; [`open_store`] picks one
//! by URL.
//!
//! | URL | backend | cargo feature |
//! |---|---|---|
//! | `memory://` | [`memory::MemoryStore`] | always |
//! | `sqlite://PATH` | `sqlite::SqliteStore` | `sqlite` (default) |
//! | `redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://` | `redis::RedisStore` | `redis` (default) |
//! | `postgres://`, `postgresql://` | `postgres::PostgresStore` | `postgres` (default) |
//!
//! The URL is parsed once, by [`parse_store_url`], and the backend is handed the parsed
//! [`StoreSpec`]. A scheme whose backend this build leaves out is refused there, with a
//! message naming the feature.

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod shared;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::sync::Arc;

use crate::error::Result;
use crate::spec::{parse_store_url, StoreOptions, StoreSpec};
use crate::store::SessionStore;

/// Opens the store a URL names: `memory://`, `sqlite://PATH`, `redis://...`,
/// `rediss://...`, `redis+cluster://...` or `postgres://...`.
///
/// `sqlite://` takes a file path after the scheme: `sqlite:///var/lib/ragchat/s.db`
/// (absolute) or `sqlite://data/s.db` (relative to the working directory).
///
/// # Errors
/// `InvalidInput` for an unknown scheme, a malformed URL or a backend this build
/// leaves out; `Unavailable` when the store cannot be opened or reached.
pub async fn open_store(url: &str, opts: &StoreOptions) -> Result<Arc<dyn SessionStore>> {
    open_spec(parse_store_url(url)?, opts).await
}

/// Opens the store `spec` names (see [`open_store`]).
///
/// # Errors
/// As [`open_store`], less the URL checks.
pub async fn open_spec(spec: StoreSpec, opts: &StoreOptions) -> Result<Arc<dyn SessionStore>> {
    let _ = opts; // only network stores take options
    match spec {
        StoreSpec::Memory => Ok(Arc::new(memory::MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        StoreSpec::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(path).await?)),
        #[cfg(feature = "redis")]
        StoreSpec::Redis(location) => Ok(Arc::new(
            redis::RedisStore::open_node(&location, opts).await?,
        )),
        #[cfg(feature = "redis")]
        StoreSpec::RedisCluster(location) => Ok(Arc::new(
            redis::RedisStore::open_cluster(&location, opts).await?,
        )),
        #[cfg(feature = "postgres")]
        StoreSpec::Postgres(location) => Ok(Arc::new(
            postgres::PostgresStore::open(&location, opts).await?,
        )),
        // `parse_store_url` refuses these already, in the same words.
        #[allow(unreachable_patterns)]
        other => {
            let feature = format!("{:?}", other.kind()).to_lowercase();
            Err(crate::error::MemoryError::invalid(format!(
                "this build has no {feature} support (ragchat-memory was built without its \
                 `{feature}` feature)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::MemoryError;

    #[tokio::test]
    async fn unknown_schemes_are_rejected_clearly() {
        for url in ["mysql://x", "foo", "", "memory://x", "sqlite://"] {
            let err = open_store(url, &StoreOptions::default()).await.unwrap_err();
            assert!(matches!(err, MemoryError::InvalidInput(_)), "{url}: {err}");
        }
        let err = open_store("mongo://h", &StoreOptions::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown store scheme \"mongo\""), "{err}");
    }

    #[tokio::test]
    async fn memory_urls_open_without_any_feature() {
        let store = open_store("memory://", &StoreOptions::default())
            .await
            .unwrap();
        assert_eq!(store.kind(), crate::spec::StoreKind::Memory);
    }
}
