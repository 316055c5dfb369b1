//! What a Redis store *is*, for the journal: where its data lives (host, port and
//! database, or socket, or the cluster's nodes), without credentials and without how it
//! is reached (`redis://` and `rediss://` to one server are one store). Journal entries
//! written for one identity are never replayed into another.

use redis::{ConnectionAddr, ConnectionInfo};

use crate::spec::RedisLocation;

/// The identity of the store at `location`: `redis+cluster://` with its nodes sorted
/// when `cluster`, else `redis://` with the one node.
pub(super) fn store_identity(location: &RedisLocation, cluster: bool) -> String {
    let mut nodes: Vec<String> = location
        .connection_infos()
        .iter()
        .map(node_identity)
        .collect();
    if !cluster {
        return format!("redis://{}", nodes.concat());
    }
    nodes.sort();
    nodes.dedup();
    format!("redis+cluster://{}", nodes.join(","))
}

/// `host:port/db` or `unix:/path?db=N` of one node.
fn node_identity(info: &ConnectionInfo) -> String {
    let db = info.redis_settings().db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{}:{port}/{db}", host.to_ascii_lowercase())
        }
        ConnectionAddr::Unix(path) => format!("unix:{}?db={db}", path.display()),
        other => format!("{other:?}/{db}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_identity(url: &str) -> String {
        let (location, cluster) = RedisLocation::from_url(url).unwrap();
        super::store_identity(&location, cluster)
    }

    #[test]
    fn identity_names_place_and_database_never_credentials() {
        assert_eq!(
            store_identity("redis://:secret@Cache.example.com:6380/2"),
            "redis://cache.example.com:6380/2"
        );
        assert_eq!(
            store_identity("rediss://user:pw@cache.example.com:6380/2"),
            "redis://cache.example.com:6380/2",
            "TLS or not, it is the same data"
        );
        assert_eq!(store_identity("redis://h"), "redis://h:6379/0");
        assert_ne!(store_identity("redis://h/1"), store_identity("redis://h/2"));
        assert_eq!(
            store_identity("redis+cluster://:pw@b:7001,a:7000"),
            "redis+cluster://a:7000/0,b:7001/0"
        );
        assert!(!store_identity("redis+unix:///run/r.sock?db=1&pass=s3cret").contains("s3cret"));
    }
}
