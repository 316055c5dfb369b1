//! The connection a `RedisStore` talks through: one multiplexed `ConnectionManager` to a
//! single Redis, or a cluster connection that routes each command to its slot's master.
//! Both are created once and cloned per call.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A cluster client that connects on first use (so a cluster that is down at startup is
/// not an error) and then keeps one connection.
pub(super) struct LazyCluster {
    client: ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    connect_timeout: Duration,
}

impl LazyCluster {
    pub(super) fn new(client: ClusterClient, connect_timeout: Duration) -> Self {
        LazyCluster {
            client,
            conn: tokio::sync::Mutex::new(None),
            connect_timeout,
        }
    }

    /// The cluster connection, connecting first if needed.
    pub(super) async fn get(&self) -> RedisResult<ClusterConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = tokio::time::timeout(self.connect_timeout, self.client.get_async_connection())
            .await
            .map_err(|_| {
                redis::RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no cluster node answered within the connect timeout",
                ))
            })??;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

/// Where commands go.
#[derive(Clone)]
pub(super) enum Target {
    Single(ConnectionManager),
    Cluster(Arc<LazyCluster>),
}

impl Target {
    /// A connection for one call.
    pub(super) async fn connection(&self) -> RedisResult<Conn> {
        match self {
            Target::Single(manager) => Ok(Conn::Single(manager.clone())),
            Target::Cluster(lazy) => Ok(Conn::Cluster(lazy.get().await?)),
        }
    }
}

/// A connection for one call.
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The node URLs of `redis+cluster://[user:pass@]h1:p1,h2:p2` (or `rediss+cluster://`),
/// each as `redis://[user:pass@]h:p`, credentials applied to every node.
///
/// # Errors
/// A message for people when the URL names no node.
pub fn cluster_nodes(url: &str) -> Result<Vec<String>, String> {
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
}
