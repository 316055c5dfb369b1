//! One page of the users who have sessions: how a whole Redis store is walked
//! (`sessions migrate`).
//!
//! Redis keeps no ordered list of users, and adding one would cost every append a write
//! to a key outside the user's hash tag (a second slot on a cluster, so no longer one
//! atomic script). The users are found instead by `SCAN`ning for their session indexes
//! (`ragchat:{<user>}:sessions`, see [`super::keys`]), on a cluster on every master.
//! `SCAN` returns keys in no order, so each page is a pass over the whole keyspace that
//! keeps the `limit` smallest ids after `after`: memory stays bounded by `limit`, each
//! step is a short command that never blocks Redis for other users, but **a page costs a
//! keyspace scan**, and walking `U` users in pages of `P` costs `U / P` scans. That is
//! fine for an operator's one-off walk and wrong for anything on a request path.
//!
//! A user whose last session has just expired may still be listed until the index
//! expires too (the index is listed, not each session checked); `list` then shows none.

use std::collections::BTreeSet;

use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;

use super::conn::Conn;
use super::decode::value_str;
use super::keys::{parse_user_index, user_index_pattern};
use super::RedisStore;
use crate::error::{MemoryError, Result};
use crate::message::validate_id;

/// Keys one `SCAN` step looks at: large enough that a pass is few round trips, small
/// enough that a step is a short command.
const SCAN_COUNT: usize = 1000;

/// The `limit` smallest user ids after `after` seen so far.
struct Smallest<'a> {
    after: Option<&'a str>,
    limit: usize,
    ids: BTreeSet<String>,
}

impl Smallest<'_> {
    fn offer(&mut self, key: &[u8]) {
        let Some(user) = parse_user_index(key).and_then(|u| std::str::from_utf8(u).ok()) else {
            return;
        };
        if validate_id("user", user).is_err() || self.after.is_some_and(|a| user <= a) {
            return;
        }
        let full = self.ids.len() >= self.limit;
        if full && self.ids.last().is_some_and(|last| user >= last.as_str()) {
            return;
        }
        self.ids.insert(user.to_string());
        if self.ids.len() > self.limit {
            self.ids.pop_last();
        }
    }
}

/// One `SCAN` step from `cursor`.
fn scan_step(cursor: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(user_index_pattern())
        .arg("COUNT")
        .arg(SCAN_COUNT);
    cmd
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
    /// See [`crate::SessionStore::users`] and the module docs.
    pub(super) async fn user_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let mut found = Smallest {
            after,
            limit: limit.max(1),
            ids: BTreeSet::new(),
        };
        let mut conn = self.connection().await?;
        if let Conn::Cluster(cluster) = &mut conn {
            self.scan_masters(cluster, &mut found).await?;
        } else {
            let mut cursor = 0;
            loop {
                let watch = self.target.watch(&conn);
                let reply: Value = watch
                    .done(scan_step(cursor).query_async(&mut conn).await)
                    .map_err(|e| self.failed(&conn, e))?;
                let (next, keys) = scan_reply(reply)
                    .ok_or_else(|| self.corrupt("SCAN gave an unexpected reply".into()))?;
                keys.iter().for_each(|k| found.offer(k));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(found.ids.into_iter().collect())
    }

    /// Scans every master of the cluster: the first step goes to all of them at once,
    /// and its reply names each one, which the rest of its scan is then sent to.
    async fn scan_masters(
        &self,
        cluster: &mut redis::cluster_async::ClusterConnection,
        found: &mut Smallest<'_>,
    ) -> Result<()> {
        let all = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
        let reply = cluster
            .route_command(scan_step(0), all)
            .await
            .map_err(|e| self.err(e))?;
        let Value::Map(per_master) = reply else {
            return Err(self.corrupt("SCAN on every master gave an unexpected reply".into()));
        };
        for (address, reply) in per_master {
            let address = value_str(&address).unwrap_or_default().to_string();
            let node = address
                .rsplit_once(':')
                .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)));
            let Some((host, port)) = node else {
                return Err(self.corrupt(format!("a cluster node's address {address:?}")));
            };
            let mut reply = reply;
            loop {
                if let Value::ServerError(e) = &reply {
                    return Err(MemoryError::Unavailable {
                        store: self.url.clone(),
                        reason: format!("SCAN on {address}: {e:?}"),
                    });
                }
                let (next, keys) = scan_reply(reply).ok_or_else(|| {
                    self.corrupt(format!("SCAN on {address} gave an unexpected reply"))
                })?;
                keys.iter().for_each(|k| found.offer(k));
                if next == 0 {
                    break;
                }
                let here = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port,
                });
                reply = cluster
                    .route_command(scan_step(next), here)
                    .await
                    .map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_smallest_ids_after_the_cursor() {
        let mut found = Smallest {
            after: Some("b"),
            limit: 2,
            ids: BTreeSet::new(),
        };
        for user in ["e", "a", "b", "d", "c", "bad id", "c"] {
            found.offer(super::super::keys::user_index(user).as_bytes());
        }
        found.offer(b"ragchat:{x}:s:y:log");
        assert_eq!(found.ids.into_iter().collect::<Vec<_>>(), ["c", "d"]);
    }
}
