//! Walking every key that matches a pattern, a short `SCAN` step at a time, on one
//! Redis or on every master of a cluster: how a whole store is visited (its users for
//! `sessions migrate`, the sessions an archive is behind on for the tier's sweep).
//!
//! On a cluster the first step goes to all masters at once; its reply names each one,
//! and the rest of each master's scan is sent to it by address. A walk never holds
//! more than one step's keys, and each step is a short command that does not keep
//! Redis from other clients.

use std::collections::VecDeque;

use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;

use super::conn::Conn;
use super::decode::value_str;
use super::RedisStore;
use crate::error::{MemoryError, Result};

/// Keys one `SCAN` step looks at.
const SCAN_COUNT: usize = 1000;

/// Where a walk is.
pub(super) struct KeyWalk {
    pattern: String,
    started: bool,
    /// Single node: the cursor (0 after the first step = done).
    cursor: u64,
    /// Cluster: the masters whose scan goes on, with their cursors.
    masters: VecDeque<(String, u16, u64)>,
}

impl KeyWalk {
    pub(super) fn new(pattern: impl Into<String>) -> Self {
        KeyWalk {
            pattern: pattern.into(),
            started: false,
            cursor: 0,
            masters: VecDeque::new(),
        }
    }

    fn step(&self, cursor: u64) -> redis::Cmd {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        cmd
    }
}

/// `(next cursor, keys)` of a `SCAN` reply.
fn scan_reply(reply: Value) -> Option<(u64, Vec<Vec<u8>>)> {
    let Value::Array(mut parts) = reply else {
        return None;
    };
    let (Some(Value::Array(keys)), Some(cursor), None) = (parts.pop(), parts.pop(), parts.pop())
    else {
        return None;
    };
    let cursor = value_str(&cursor)?.parse().ok()?;
    let keys = keys
        .into_iter()
        .filter_map(|k| match k {
            Value::BulkString(b) => Some(b),
            Value::SimpleString(s) => Some(s.into_bytes()),
            _ => None,
        })
        .collect();
    Some((cursor, keys))
}

impl RedisStore {
    /// The next keys of `walk`; `None` when it is over.
    ///
    /// # Errors
    /// `Unavailable` when Redis (or a master) cannot be reached.
    pub(super) async fn walk_step(&self, walk: &mut KeyWalk) -> Result<Option<Vec<Vec<u8>>>> {
        let mut conn = self.connection().await?;
        if let Conn::Cluster(cluster) = &mut conn {
            return self.cluster_step(cluster, walk).await;
        }
        if walk.started && walk.cursor == 0 {
            return Ok(None);
        }
        walk.started = true;
        let watch = self.target.watch(&conn);
        let reply: Value = watch
            .done(walk.step(walk.cursor).query_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        let (next, keys) = scan_reply(reply)
            .ok_or_else(|| self.corrupt("SCAN gave an unexpected reply".into()))?;
        walk.cursor = next;
        Ok(Some(keys))
    }

    async fn cluster_step(
        &self,
        cluster: &mut redis::cluster_async::ClusterConnection,
        walk: &mut KeyWalk,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        if !walk.started {
            walk.started = true;
            let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
            let reply = cluster
                .route_command(walk.step(0), all)
                .await
                .map_err(|e| self.err(e))?;
            let Value::Map(per_master) = reply else {
                return Err(self.corrupt("SCAN on every master gave an unexpected reply".into()));
            };
            let mut found = Vec::new();
            for (address, reply) in per_master {
                let address = value_str(&address).unwrap_or_default().to_string();
                let (next, keys) = self.master_reply(&address, reply)?;
                found.extend(keys);
                if next != 0 {
                    let (host, port) = self.master_address(&address)?;
                    walk.masters.push_back((host, port, next));
                }
            }
            return Ok(Some(found));
        }
        let Some((host, port, cursor)) = walk.masters.pop_front() else {
            return Ok(None);
        };
        let here = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port,
        });
        let reply = cluster
            .route_command(walk.step(cursor), here)
            .await
            .map_err(|e| self.err(e))?;
        let (next, keys) = self.master_reply(&format!("{host}:{port}"), reply)?;
        if next != 0 {
            walk.masters.push_back((host, port, next));
        }
        Ok(Some(keys))
    }

    fn master_reply(&self, address: &str, reply: Value) -> Result<(u64, Vec<Vec<u8>>)> {
        if let Value::ServerError(e) = &reply {
            return Err(MemoryError::Unavailable {
                store: self.url.clone(),
                reason: format!("SCAN on {address}: {e:?}"),
            });
        }
        scan_reply(reply)
            .ok_or_else(|| self.corrupt(format!("SCAN on {address} gave an unexpected reply")))
    }

    fn master_address(&self, address: &str) -> Result<(String, u16)> {
        address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
            .ok_or_else(|| self.corrupt(format!("a cluster node's address {address:?}")))
    }
}
