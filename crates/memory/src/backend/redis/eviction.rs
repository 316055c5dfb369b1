//! Whether Redis may evict ragchat's keys.
//!
//! With `maxmemory` set and a policy other than `noeviction`, Redis frees memory by
//! deleting keys one at a time: an `allkeys-*` policy may take any key, a `volatile-*`
//! policy any key with an expiry, which is every ragchat key unless `--ttl 0`. A
//! conversation then loses its log, its counters or its id set. The scripts repair
//! what is left ([`super`]'s `repair.lua`), but the messages of an evicted log are
//! gone: the operator should know, at start-up and on `/readyz`. `INFO memory` tells
//! (it works where `CONFIG` is disabled, as on managed Redis).

use redis::Value;

use super::RedisStore;

/// The warning for one node's `INFO memory` text, if its settings let Redis evict keys.
pub(super) fn eviction_warning(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let maxmemory: u64 = field("maxmemory")?.parse().ok()?;
    let policy = field("maxmemory_policy")?;
    if maxmemory == 0 || policy == "noeviction" {
        return None;
    }
    Some(format!(
        "Redis may evict ragchat's keys (maxmemory {maxmemory} bytes, maxmemory-policy {policy}): \
         a conversation can lose messages when memory runs short; set maxmemory-policy noeviction \
         and give Redis enough memory (see the README)"
    ))
}

/// Every text in a reply (a cluster answers `INFO` with one text per node).
pub(super) fn texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => out.push(s.clone()),
        Value::VerbatimString { text, .. } => out.push(text.clone()),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|v| texts(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| texts(v, out)),
        _ => {}
    }
}

impl RedisStore {
    /// The eviction warnings of every node this store reaches (empty when none may
    /// evict, or Redis does not answer).
    pub(super) async fn eviction_warnings(&self) -> Vec<String> {
        let Ok(mut conn) = self.connection().await else {
            return Vec::new();
        };
        let watch = self.target.watch(&conn);
        let reply: redis::RedisResult<Value> = watch.done(
            redis::cmd("INFO")
                .arg("memory")
                .query_async(&mut conn)
                .await,
        );
        let reply = match reply {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(store = %self.url, error = %e, "cannot read INFO memory");
                return Vec::new();
            }
        };
        let mut infos = Vec::new();
        texts(&reply, &mut infos);
        let mut warnings: Vec<String> = infos.iter().filter_map(|i| eviction_warning(i)).collect();
        warnings.sort();
        warnings.dedup();
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bounded_memory_with_an_evicting_policy_warns() {
        let info = |max: u64, policy: &str| {
            format!("# Memory\r\nused_memory:1000\r\nmaxmemory:{max}\r\nmaxmemory_human:3M\r\nmaxmemory_policy:{policy}\r\n")
        };
        let w = eviction_warning(&info(3_145_728, "allkeys-lru")).unwrap();
        assert!(w.contains("maxmemory-policy allkeys-lru"), "{w}");
        assert!(eviction_warning(&info(3_145_728, "volatile-ttl")).is_some());
        assert!(eviction_warning(&info(3_145_728, "noeviction")).is_none());
        assert!(
            eviction_warning(&info(0, "allkeys-lru")).is_none(),
            "no limit, no eviction"
        );
        assert!(eviction_warning("garbage").is_none());
    }
}
