//! What Redis keeps on disk, for [`SessionStore::durability`](crate::store::SessionStore::durability).
//!
//! Conversations are only as durable as the store: a Redis with neither an append-only
//! file nor snapshots loses every conversation when it restarts. The store asks over
//! its own connection (a cluster connection on a cluster URL): `CONFIG GET` of
//! `appendonly`, `appendfsync` and `save`, one at a time (a cluster routes each to a
//! node, and Redis before 7 takes one parameter per `CONFIG GET`), and falls back to
//! `INFO persistence` where `CONFIG` is disabled (managed Redis), which shows the
//! append-only file but not the snapshot schedule.

use redis::Value;

use super::eviction::texts;
use super::RedisStore;
use crate::store::{Durability, RedisDurability};

/// The value of `name` in a `CONFIG GET` reply: a map (RESP3), a flat list of names and
/// values (RESP2), or either of those per node.
fn config_value(reply: &Value, name: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    };
    match reply {
        Value::Map(pairs) => pairs.iter().find_map(|(k, v)| {
            if text(k).is_some_and(|k| k.eq_ignore_ascii_case(name)) {
                text(v)
            } else {
                config_value(v, name)
            }
        }),
        Value::Array(items) if items.iter().all(|i| text(i).is_some()) => items
            .chunks(2)
            .find(|p| text(&p[0]).is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .and_then(|p| text(p.get(1)?)),
        Value::Array(items) => items.iter().find_map(|i| config_value(i, name)),
        _ => None,
    }
}

/// What `INFO persistence` says: whether the append-only file is on (its `save`
/// schedule is not shown there).
fn from_info(info: &str) -> RedisDurability {
    let aof = info.lines().any(|l| l.trim() == "aof_enabled:1");
    RedisDurability {
        appendonly: Some(aof),
        ..RedisDurability::default()
    }
}

impl RedisStore {
    /// See [`SessionStore::durability`](crate::store::SessionStore::durability):
    /// `Unknown` when Redis does not answer.
    pub(super) async fn read_durability(&self) -> Durability {
        let Ok(mut conn) = self.connection().await else {
            return Durability::Unknown;
        };
        let mut report = RedisDurability::default();
        for name in ["appendonly", "appendfsync", "save"] {
            let watch = self.target.watch(&conn);
            let reply: redis::RedisResult<Value> = watch.done(
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query_async(&mut conn)
                    .await,
            );
            let value = match reply {
                Ok(reply) => config_value(&reply, name),
                Err(e) => {
                    tracing::debug!(store = %self.url, error = %e, "cannot read CONFIG {name}");
                    break;
                }
            };
            match name {
                "appendonly" => report.appendonly = value.map(|v| v.eq_ignore_ascii_case("yes")),
                "appendfsync" => report.appendfsync = value,
                _ => report.save = value,
            }
        }
        if report.appendonly.is_some() && report.save.is_some() {
            return Durability::Redis(report);
        }
        let watch = self.target.watch(&conn);
        let reply: redis::RedisResult<Value> = watch.done(
            redis::cmd("INFO")
                .arg("persistence")
                .query_async(&mut conn)
                .await,
        );
        match reply {
            Ok(reply) => {
                let mut infos = Vec::new();
                texts(&reply, &mut infos);
                // A cluster answers per node: the AOF counts as on only if every node has it.
                let aof = !infos.is_empty()
                    && infos.iter().all(|i| from_info(i).appendonly == Some(true));
                Durability::Redis(RedisDurability {
                    appendonly: Some(aof),
                    ..RedisDurability::default()
                })
            }
            Err(e) => {
                tracing::debug!(store = %self.url, error = %e, "cannot read INFO persistence");
                Durability::Unknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn config_replies_come_flat_or_as_maps() {
        let flat = Value::Array(vec![bulk("appendonly"), bulk("yes")]);
        let map = Value::Map(vec![(bulk("save"), bulk("3600 1 300 100"))]);
        let per_node = Value::Map(vec![(bulk("10.0.0.1:7000"), flat.clone())]);
        assert_eq!(config_value(&flat, "appendonly").as_deref(), Some("yes"));
        assert_eq!(
            config_value(&map, "save").as_deref(),
            Some("3600 1 300 100")
        );
        assert_eq!(
            config_value(&per_node, "appendonly").as_deref(),
            Some("yes")
        );
        assert_eq!(config_value(&Value::Array(vec![]), "save"), None);
    }

    #[test]
    fn info_shows_the_append_only_file() {
        assert_eq!(
            from_info("# Persistence\r\nloading:0\r\naof_enabled:1\r\n").appendonly,
            Some(true)
        );
        assert_eq!(from_info("aof_enabled:0\r\n").appendonly, Some(false));
        assert_eq!(from_info("aof_enabled:0\r\n").save, None);
    }
}
