//! Store URLs: which backend a URL names ([`StoreSpec`], checked by [`parse_store_url`]
//! without opening anything), the one list of schemes, [`redact_url`] for showing
//! them, and [`StoreOptions`] for reaching the store.
//!
//! | scheme | kind | remote |
//! |---|---|---|
//! | `memory://` | [`StoreKind::Memory`] | no |
//! | `sqlite://PATH` | [`StoreKind::Sqlite`] | no |
//! | `redis://`, `rediss://` | [`StoreKind::Redis`] | yes |
//! | `redis+cluster://h1:p1,h2:p2`, `rediss+cluster://...` | [`StoreKind::Redis`] | yes |
//! | `postgres://`, `postgresql://` | [`StoreKind::Postgres`] | yes |
//!
//! A URL is parsed here once; `open_store` hands the parsed spec to the backend, which
//! does not look at the URL again. Schemes whose backend this build leaves out (cargo
//! features `sqlite`, `redis`) are refused here, naming the missing feature.
//!
//! This module is a leaf: it knows the schemes, not the backends.

mod postgres;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::error::{MemoryError, Result};

/// The URL as ragchat shows it: userinfo, query values (but settings such as `db`)
/// and fragment hidden. One rule for every URL shown; see [`ragchat_redact`].
pub use ragchat_redact::redact_url;

pub use self::postgres::{PostgresLocation, SslMode};

/// Which kind of backend a store is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Process RAM (`memory://`).
    Memory,
    /// Embedded SQLite file (`sqlite://`).
    Sqlite,
    /// Redis (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`).
    Redis,
    /// PostgreSQL (`postgres://`, `postgresql://`).
    Postgres,
}

impl StoreKind {
    /// Whether sessions outlive the process.
    pub fn is_durable(self) -> bool {
        !matches!(self, StoreKind::Memory)
    }

    /// Whether the store is shared over the network (and so may be unreachable: the
    /// manager's local journal stands in for it then).
    pub fn is_remote(self) -> bool {
        matches!(self, StoreKind::Redis | StoreKind::Postgres)
    }
}

/// Every scheme a store URL may have: `(scheme, kind, names a Redis Cluster)`.
const SCHEMES: [(&str, StoreKind, bool); 8] = [
    ("memory", StoreKind::Memory, false),
    ("sqlite", StoreKind::Sqlite, false),
    ("redis", StoreKind::Redis, false),
    ("rediss", StoreKind::Redis, false),
    ("redis+cluster", StoreKind::Redis, true),
    ("rediss+cluster", StoreKind::Redis, true),
    ("postgres", StoreKind::Postgres, false),
    ("postgresql", StoreKind::Postgres, false),
];

/// The kind of store `url`'s scheme names, looking at the scheme only (the rest may
/// still be malformed; [`parse_store_url`] checks it).
pub fn scheme_kind(url: &str) -> Option<StoreKind> {
    let (scheme, _) = url.split_once("://")?;
    SCHEMES
        .iter()
        .find(|(name, _, _)| *name == scheme)
        .map(|(_, kind, _)| *kind)
}

/// Whether `url`'s scheme names a store shared over the network (Redis, single node or
/// cluster, or PostgreSQL), looking at the scheme only.
pub fn is_remote_url(url: &str) -> bool {
    scheme_kind(url).is_some_and(StoreKind::is_remote)
}

/// What a store URL names, as checked by [`parse_store_url`] (nothing opened).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpec {
    /// `memory://`
    Memory,
    /// `sqlite://PATH`
    Sqlite(PathBuf),
    /// `redis://...` or `rediss://...`
    Redis(RedisLocation),
    /// `redis+cluster://h1:p1,h2:p2` (or `rediss+cluster://`).
    RedisCluster(RedisLocation),
    /// `postgres://...` or `postgresql://...`
    Postgres(PostgresLocation),
}

impl StoreSpec {
    /// The kind of backend the URL names.
    pub fn kind(&self) -> StoreKind {
        match self {
            StoreSpec::Memory => StoreKind::Memory,
            StoreSpec::Sqlite(_) => StoreKind::Sqlite,
            StoreSpec::Redis(_) | StoreSpec::RedisCluster(_) => StoreKind::Redis,
            StoreSpec::Postgres(_) => StoreKind::Postgres,
        }
    }

    /// Whether the store is shared over the network.
    pub fn is_remote(&self) -> bool {
        self.kind().is_remote()
    }
}

/// Where a Redis store lives: one node, or the nodes of a cluster, with the URL's
/// credentials applied to each. Shown (`Debug`) without credentials.
#[derive(Clone)]
pub struct RedisLocation {
    /// The URL as given, credentials included: never shown.
    url: String,
    /// One `redis://` or `rediss://` URL per node (one for a single node).
    nodes: Vec<String>,
    /// The nodes as the Redis client parsed them, in the order of `nodes`.
    #[cfg(feature = "redis")]
    infos: Vec<redis::ConnectionInfo>,
}

impl RedisLocation {
    /// The URL as given, credentials included (for connecting; show [`redact_url`] of it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// One `redis://` / `rediss://` URL per node, credentials included.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// A location from a URL `parse_store_url` may not know but the Redis client does
    /// (`redis+unix://`, `unix://`): `redis+cluster://` and `rediss+cluster://` name a
    /// cluster, anything else one node.
    ///
    /// # Errors
    /// `InvalidInput` when the Redis client cannot parse it.
    #[cfg(feature = "redis")]
    pub(crate) fn from_url(url: &str) -> Result<(Self, bool)> {
        let cluster = url
            .split_once("://")
            .is_some_and(|(scheme, _)| SCHEMES.iter().any(|(n, _, c)| *c && *n == scheme));
        Ok((redis_location(url, cluster, &redact_url(url))?, cluster))
    }

    /// The nodes as parsed by the Redis client.
    #[cfg(feature = "redis")]
    pub(crate) fn connection_infos(&self) -> &[redis::ConnectionInfo] {
        &self.infos
    }
}

impl PartialEq for RedisLocation {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.nodes == other.nodes
    }
}

impl Eq for RedisLocation {}

impl std::fmt::Debug for RedisLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| redact_url(n)).collect();
        f.debug_struct("RedisLocation")
            .field("url", &redact_url(&self.url))
            .field("nodes", &nodes)
            .finish()
    }
}

/// Options for opening a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Connect timeout for network stores.
    pub connect_timeout: Duration,
    /// Per-command timeout for network stores.
    pub command_timeout: Duration,
    /// Connect on first use instead of now, so that a store that is down at startup
    /// is not an error (the manager's journal takes over).
    pub lazy: bool,
    /// How often an idle connection that vouches for cached copies (Redis with
    /// client-side caching) is checked with a `PING` bounded by `command_timeout`;
    /// unanswered, it stops vouching. Zero turns the check off.
    pub heartbeat: Duration,
    /// Redis: look for sessions in the v1 layout on every call, not only when a session
    /// has no v2 keys, so that what a v1 server writes during a rolling deploy is merged
    /// (see `backend::redis::keys`). One `EXISTS` per call; off once no v1 server runs.
    pub v1_guard: bool,
    /// Redis: append a turn's messages with the lean script when the session's seq is
    /// known from an earlier reply (`backend::redis` module docs); off, every append
    /// runs the full script. For comparison, and a way back should the lean one misbehave.
    pub lean_append: bool,
}

/// Default interval of the connection heartbeat.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(1);

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            lazy: false,
            heartbeat: DEFAULT_HEARTBEAT,
            v1_guard: true,
            lean_append: true,
        }
    }
}

/// Checks a store URL without opening or connecting to anything.
///
/// # Errors
/// `InvalidInput` naming what is wrong (with any password redacted), including a
/// scheme whose backend this build leaves out.
pub fn parse_store_url(url: &str) -> Result<StoreSpec> {
    let shown = redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(MemoryError::invalid(format!(
            "store URL {shown:?} has no scheme; use memory://, sqlite://PATH, redis://HOST:PORT, rediss://HOST:PORT or postgres://HOST:PORT/DB"
        )));
    };
    let Some(&(_, kind, cluster)) = SCHEMES.iter().find(|(name, _, _)| *name == scheme) else {
        return Err(MemoryError::invalid(format!(
            "unknown store scheme {scheme:?} in {shown:?}; use memory://, sqlite://PATH, redis://, rediss://, redis+cluster:// or postgres://"
        )));
    };
    match kind {
        StoreKind::Memory if rest.is_empty() => Ok(StoreSpec::Memory),
        StoreKind::Memory => Err(MemoryError::invalid(format!(
            "memory:// takes nothing after the scheme, got {shown:?}"
        ))),
        StoreKind::Sqlite => {
            compiled_in(cfg!(feature = "sqlite"), "sqlite", &shown)?;
            if rest.is_empty() || rest.contains('\0') {
                return Err(MemoryError::invalid(
                    "sqlite:// needs a file path, e.g. sqlite:///var/lib/ragchat/sessions.db",
                ));
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(rest)))
        }
        StoreKind::Redis => {
            compiled_in(cfg!(feature = "redis"), "redis", &shown)?;
            let location = redis_location(url, cluster, &shown)?;
            Ok(if cluster {
                StoreSpec::RedisCluster(location)
            } else {
                StoreSpec::Redis(location)
            })
        }
        StoreKind::Postgres => {
            compiled_in(cfg!(feature = "postgres"), "postgres", &shown)?;
            Ok(StoreSpec::Postgres(PostgresLocation::parse(url)?))
        }
    }
}

/// Refuses a scheme whose backend was left out of this build.
fn compiled_in(present: bool, feature: &str, shown: &str) -> Result<()> {
    if present {
        return Ok(());
    }
    Err(MemoryError::invalid(format!(
        "this build has no {feature} support (ragchat-memory was built without its \
         `{feature}` feature), so it cannot open {shown:?}"
    )))
}

/// The nodes of a Redis URL, each checked by the Redis client.
fn redis_location(url: &str, cluster: bool, shown: &str) -> Result<RedisLocation> {
    let nodes = if cluster {
        cluster_nodes(url).map_err(|e| MemoryError::invalid(format!("{e}; got {shown:?}")))?
    } else {
        vec![url.to_string()]
    };
    #[cfg(feature = "redis")]
    let infos = nodes
        .iter()
        .map(|node| {
            redis::IntoConnectionInfo::into_connection_info(node.as_str()).map_err(|e| {
                MemoryError::invalid(if cluster {
                    format!("cannot parse a node of Redis Cluster URL {shown:?}: {e}")
                } else {
                    format!("cannot parse Redis URL {shown:?}: {e}")
                })
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RedisLocation {
        url: url.to_string(),
        nodes,
        #[cfg(feature = "redis")]
        infos,
    })
}

/// The node URLs of `redis+cluster://[user:pass@]h1:p1,h2:p2` (or `rediss+cluster://`),
/// each as `redis://[user:pass@]h:p`, credentials applied to every node.
///
/// # Errors
/// A message for people when the URL names no node.
pub fn cluster_nodes(url: &str) -> std::result::Result<Vec<String>, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("redis+cluster://") {
        ("redis", rest)
    } else if let Some(rest) = url.strip_prefix("rediss+cluster://") {
        ("rediss", rest)
    } else {
        return Err("a cluster URL starts with redis+cluster:// or rediss+cluster://".into());
    };
    let rest = rest.trim_end_matches('/');
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (&rest[..=at], &rest[at + 1..]),
        None => ("", rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{auth}{h}"))
        .collect();
    if nodes.is_empty() {
        return Err("the cluster URL names no node (redis+cluster://host:port,host:port)".into());
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_checked_without_opening_anything() {
        assert_eq!(parse_store_url("memory://").unwrap(), StoreSpec::Memory);
        let err = parse_store_url("ftp://user:secret@h")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown store scheme") && !err.contains("secret"),
            "{err}"
        );
    }

    #[cfg(all(feature = "sqlite", feature = "redis"))]
    #[test]
    fn every_backend_url_is_recognised() {
        assert_eq!(
            parse_store_url("sqlite:///tmp/x.db").unwrap(),
            StoreSpec::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            parse_store_url("redis://h:1/2").unwrap(),
            StoreSpec::Redis(r) if r.nodes() == ["redis://h:1/2"]
        ));
        assert!(matches!(
            parse_store_url("redis+cluster://a:1,b:2").unwrap(),
            StoreSpec::RedisCluster(r) if r.nodes().len() == 2
        ));
    }

    #[test]
    fn one_scheme_list_says_what_is_remote() {
        for url in [
            "redis://h",
            "rediss://h",
            "redis+cluster://a,b",
            "rediss+cluster://a",
        ] {
            assert!(is_remote_url(url), "{url}");
            assert_eq!(scheme_kind(url), Some(StoreKind::Redis));
        }
        for url in ["postgres://h/db", "postgresql://u:p@h:5432/db"] {
            assert!(is_remote_url(url), "{url}");
            assert_eq!(scheme_kind(url), Some(StoreKind::Postgres));
        }
        for url in ["memory://", "sqlite:///x.db", "ftp://h", "redis", ""] {
            assert!(!is_remote_url(url), "{url}");
        }
        assert_eq!(
            parse_store_url("memory://").unwrap().kind(),
            StoreKind::Memory
        );
        assert!(!parse_store_url("memory://").unwrap().is_remote());
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_location_is_shown_without_its_password() {
        let spec = parse_store_url("redis+cluster://:s3cret@a:1,b:2").unwrap();
        assert!(spec.is_remote());
        let shown = format!("{spec:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_compiled_out_backend_is_named() {
        let err = parse_store_url("redis://:s3cret@h:1").unwrap_err();
        assert!(matches!(err, MemoryError::InvalidInput(_)));
        let err = err.to_string();
        assert!(err.contains("this build has no redis support"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn cluster_urls_name_every_node_with_the_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001").unwrap(),
            ["redis://:pw@10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://h:1").unwrap(),
            ["rediss://h:1"]
        );
        assert!(cluster_nodes("redis+cluster://").is_err());
        assert!(cluster_nodes("redis://h:1").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:secret@host:6379/1"),
            "redis://***@host:6379/1"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis://:pw@[bad"), "redis://***@[bad");
        assert_eq!(
            redact_url("redis+unix:///run/redis.sock?db=1&pass=s3cret"),
            "redis+unix:///run/redis.sock?db=1&pass=***"
        );
        let err = parse_store_url("unix:///r.sock?pass=s3cret")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
