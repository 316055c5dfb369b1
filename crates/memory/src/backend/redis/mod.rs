//! `redis://` and `rediss://`: sessions shared by every app server on one Redis.
//!
//! Layout and the reasons for it are in [`keys`]. Every operation on a session is one
//! Lua script, so it is one round trip and atomic:
//! - `append.lua`: skip ids already stored, `XADD` the rest with entry id `<seq>-0`,
//!   update the meta hash, trim beyond `max_messages` (forgetting the trimmed ids),
//!   `EXPIRE` every key of the session and touch the user's session index;
//! - `load.lua`: the meta hash plus the entries after a given seq, refreshing TTLs;
//! - `delete.lua`: every key of the session and its index entry.
//!
//! Both scripts end by reading the meta hash, after their writes: that keeps the
//! session in this connection's RESP3 tracking table, so Redis tells this process when
//! another one changes it and a cached copy can be served without a round trip
//! ([`tracking`]).
//!
//! One multiplexed connection is made per store (on first use, and again after it
//! drops) and shared by every call; it applies the connect and response timeouts.

mod conn;
pub mod keys;
pub mod tracking;

use async_trait::async_trait;
use redis::cluster::ClusterClient;

pub use self::conn::cluster_nodes;
use self::conn::{Conn, LazyCluster, SingleNode, Target};
use redis::{Client, RedisError, Script, Value};

use self::keys::{user_index, SessionKeys};
use super::{now_ms, remaining_secs};
use crate::error::{MemoryError, Result};
use crate::message::{millis_to_datetime, Message, SessionKey, SourceRef};
use crate::store::{
    redact_url, AppendOptions, AppendOutcome, CorruptEntry, LoadedSession, SessionMeta,
    SessionStore, SessionSummary, Stamp, StoreKind, StoreOptions, Ttl,
};

/// Sessions in Redis: a single node (`redis://`, `rediss://`) or a Redis Cluster
/// (`redis+cluster://h1:p1,h2:p2`, `rediss+cluster://...`).
#[derive(Clone)]
pub struct RedisStore {
    target: Target,
    url: String,
    scripts: Scripts,
}

#[derive(Clone)]
struct Scripts {
    append: Script,
    load: Script,
    delete: Script,
}

impl Scripts {
    fn load() -> Self {
        Scripts {
            append: Script::new(include_str!("append.lua")),
            load: Script::new(include_str!("load.lua")),
            delete: Script::new(include_str!("delete.lua")),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (at once, or on first use with `opts.lazy`).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL; `Unavailable` when Redis does not answer
    /// within the connect timeout (never with `opts.lazy`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self> {
        let redacted = redact_url(url);
        if url.starts_with("redis+cluster://") || url.starts_with("rediss+cluster://") {
            return Self::connect_cluster(url, &redacted, opts).await;
        }
        let client = Client::open(url).map_err(|e| {
            MemoryError::invalid(format!("cannot parse Redis URL {redacted:?}: {e}"))
        })?;
        let node = SingleNode::new(client, opts.connect_timeout, opts.command_timeout)
            .map_err(|e| classify(&redacted, e))?;
        let store = RedisStore {
            target: Target::Single(std::sync::Arc::new(node)),
            url: redacted,
            scripts: Scripts::load(),
        };
        if !opts.lazy {
            tokio::time::timeout(opts.connect_timeout + opts.command_timeout, store.ping())
                .await
                .map_err(|_| MemoryError::Unavailable {
                    store: store.url.clone(),
                    reason: format!("no answer within {:?}", opts.connect_timeout),
                })??;
        }
        Ok(store)
    }

    async fn connect_cluster(url: &str, redacted: &str, opts: &StoreOptions) -> Result<Self> {
        let nodes = cluster_nodes(url)
            .map_err(|e| MemoryError::invalid(format!("{e}; got {redacted:?}")))?;
        let client = ClusterClient::builder(nodes)
            .connection_timeout(opts.connect_timeout)
            .response_timeout(opts.command_timeout)
            .retries(2)
            .build()
            .map_err(|e| {
                MemoryError::invalid(format!("cannot parse Redis Cluster URL {redacted:?}: {e}"))
            })?;
        let store = RedisStore {
            target: Target::Cluster(std::sync::Arc::new(LazyCluster::new(
                client,
                opts.connect_timeout + opts.command_timeout,
            ))),
            url: redacted.to_string(),
            scripts: Scripts::load(),
        };
        if !opts.lazy {
            store.ping().await?;
        }
        Ok(store)
    }

    /// A connection for one call.
    async fn connection(&self) -> Result<Conn> {
        self.target.connection().await.map_err(|e| self.err(e))
    }

    fn err(&self, e: RedisError) -> MemoryError {
        classify(&self.url, e)
    }

    /// Maps the error of a call made on `conn`, replacing the connection when it broke.
    fn failed(&self, conn: &Conn, e: RedisError) -> MemoryError {
        self.target.failed(conn, &e);
        classify(&self.url, e)
    }

    /// Runs a script invocation and returns its reply with the stamp taken just before
    /// it was sent (see [`tracking`]).
    async fn invoke_stamped(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<(Value, Option<Stamp>)> {
        let mut conn = self.connection().await?;
        let stamp = self.stamp(&conn);
        let watch = self.target.watch(&conn);
        let value: Value = watch
            .done(inv.invoke_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        Ok((value, stamp))
    }

    /// Stamp for a command about to be sent on `conn` (`None` without tracking).
    fn stamp(&self, conn: &Conn) -> Option<Stamp> {
        self.target.tracker()?.stamp(conn.generation())
    }

    /// Invalidation messages this store's connections have received from Redis (0 on a
    /// cluster, where reads always ask).
    pub fn invalidations_received(&self) -> u64 {
        self.target.tracker().map_or(0, |t| t.received())
    }

    /// Runs the load script; `after = -1` reads no entries, `ttl = -1` leaves TTLs alone.
    async fn run_load(
        &self,
        key: &SessionKey,
        after: i64,
        ttl: i64,
    ) -> Result<Option<LoadedSession>> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.load.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(after).arg(ttl);
        let (value, stamp) = self.invoke_stamped(&inv).await?;
        let items = match value {
            Value::Nil | Value::Boolean(false) => return Ok(None),
            Value::Array(items) => items,
            other => return Err(self.corrupt(format!("load script returned {other:?}"))),
        };
        let meta = self.decode_meta(&items)?;
        let mut messages = Vec::new();
        let mut corrupt = Vec::new();
        if let Some(Value::Array(entries)) = items.get(7) {
            messages.reserve(entries.len());
            for entry in entries {
                match decode_entry(entry) {
                    Ok(m) => messages.push(m),
                    Err(bad) => {
                        tracing::warn!(store = %self.url, session = %key, seq = ?bad.seq, reason = %bad.reason, "skipped a corrupt stored message");
                        corrupt.push(bad);
                    }
                }
            }
        }
        Ok(Some(LoadedSession {
            meta,
            messages,
            corrupt,
            stamp,
        }))
    }

    fn corrupt(&self, what: String) -> MemoryError {
        MemoryError::Corrupt(format!("{}: {what}", self.url))
    }

    /// Decodes `{count, bytes, created_at, updated_at, seq, trimmed, pttl, ...}`.
    fn decode_meta(&self, items: &[Value]) -> Result<SessionMeta> {
        let num = |i: usize, name: &str| -> Result<i64> {
            items.get(i).and_then(value_i64).ok_or_else(|| {
                self.corrupt(format!(
                    "session meta field {name} is missing or not a number"
                ))
            })
        };
        let pttl = num(6, "pttl")?;
        Ok(SessionMeta {
            message_count: num(0, "count")?.max(0) as u64,
            bytes: num(1, "bytes")?.max(0) as u64,
            created_at_ms: num(2, "created_at")?,
            updated_at_ms: num(3, "updated_at")?,
            last_seq: num(4, "seq")?.max(0) as u64,
            trimmed_seq: num(5, "trimmed")?.max(0) as u64,
            ttl_remaining_secs: (pttl >= 0).then(|| (pttl as u64).div_ceil(1000)),
        })
    }
}

/// Maps a redis-rs error to ours: anything that a later retry may fix is `Unavailable`.
fn classify(store: &str, e: RedisError) -> MemoryError {
    let transient_code = matches!(
        e.code(),
        Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN" | "READONLY" | "OOM")
    );
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || transient_code
    {
        MemoryError::Unavailable {
            store: store.to_string(),
            reason: e.to_string(),
        }
    } else {
        MemoryError::Storage {
            store: store.to_string(),
            reason: e.to_string(),
        }
    }
}

fn value_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn value_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// Decodes one stream entry `[id, [field, value, ...]]` (as `XRANGE` returns it) into
/// `(seq, message)`; anything malformed is a [`CorruptEntry`], never a panic.
pub fn decode_entry(entry: &Value) -> std::result::Result<(u64, Message), CorruptEntry> {
    let Value::Array(parts) = entry else {
        return Err(CorruptEntry {
            seq: None,
            reason: "stream entry is not an array".into(),
        });
    };
    let entry_id = parts.first().and_then(value_str).unwrap_or("");
    let seq = entry_id
        .split('-')
        .next()
        .and_then(|s| s.parse::<u64>().ok());
    let bad = |reason: String| CorruptEntry { seq, reason };
    let Some(seq_value) = seq else {
        return Err(bad(format!("stream entry id {entry_id:?} is not <seq>-0")));
    };
    let Some(Value::Array(fields)) = parts.get(1) else {
        return Err(bad("stream entry has no fields".into()));
    };
    let mut id = None;
    let mut role = None;
    let mut content = None;
    let mut sources = None;
    let mut ts = None;
    let mut status = None;
    for pair in fields.chunks(2) {
        let [name, value] = pair else {
            return Err(bad("odd number of fields".into()));
        };
        let value = value_str(value).ok_or_else(|| bad("a field is not UTF-8 text".into()))?;
        match value_str(name) {
            Some("id") => id = Some(value),
            Some("role") => role = Some(value),
            Some("content") => content = Some(value),
            Some("sources") => sources = Some(value),
            Some("ts") => ts = Some(value),
            Some("status") => status = Some(value),
            _ => {}
        }
    }
    fn need<'v>(
        v: Option<&'v str>,
        name: &str,
        seq: Option<u64>,
    ) -> std::result::Result<&'v str, CorruptEntry> {
        v.ok_or_else(|| CorruptEntry {
            seq,
            reason: format!("field {name} is missing"),
        })
    }
    let sources_json = need(sources, "sources", seq)?;
    let sources: Vec<SourceRef> = if sources_json.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(sources_json)
            .map_err(|e| bad(format!("sources are not valid JSON: {e}")))?
    };
    let ts: i64 = need(ts, "ts", seq)?
        .parse()
        .map_err(|_| bad("ts is not a number".into()))?;
    let message = Message {
        id: need(id, "id", seq)?
            .parse()
            .map_err(|e| bad(format!("{e}")))?,
        role: need(role, "role", seq)?
            .parse()
            .map_err(|e| bad(format!("{e}")))?,
        content: need(content, "content", seq)?.to_string(),
        sources,
        created_at: millis_to_datetime(ts),
        status: need(status, "status", seq)?
            .parse()
            .map_err(|e| bad(format!("{e}")))?,
    };
    Ok((seq_value, message))
}

fn ttl_arg(ttl: Ttl) -> i64 {
    ttl.secs.min(i64::MAX as u64) as i64
}

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Redis
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    async fn create(&self, key: &SessionKey, ttl: Ttl) -> Result<SessionMeta> {
        let outcome = self
            .append(
                key,
                &[],
                AppendOptions {
                    ttl,
                    max_messages: 0,
                    refresh_ttl: true,
                },
            )
            .await?;
        Ok(outcome.meta)
    }

    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.append.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(now_ms())
            .arg(ttl_arg(opts.ttl))
            .arg(opts.max_messages)
            .arg(key.session())
            .arg(messages.len())
            .arg(u8::from(opts.refresh_ttl));
        for m in messages {
            inv.arg(m.id.to_string())
                .arg(m.role.as_str())
                .arg(m.content.as_str())
                .arg(m.sources_json())
                .arg(m.created_at_millis())
                .arg(m.status.as_str());
        }
        let (value, stamp) = self.invoke_stamped(&inv).await?;
        let Value::Array(items) = value else {
            return Err(self.corrupt(format!("append script returned {value:?}")));
        };
        let meta = self.decode_meta(&items)?;
        let seqs = items
            .iter()
            .skip(7)
            .map(|v| value_i64(v).filter(|s| *s > 0).map(|s| s as u64))
            .collect::<Vec<_>>();
        if seqs.len() != messages.len() {
            return Err(self.corrupt(format!(
                "append script returned {} seqs for {} messages",
                seqs.len(),
                messages.len()
            )));
        }
        Ok(AppendOutcome { seqs, meta, stamp })
    }

    async fn load(
        &self,
        key: &SessionKey,
        after_seq: u64,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        self.run_load(key, after_seq.min(i64::MAX as u64) as i64, ttl_arg(ttl))
            .await
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        Ok(self.run_load(key, -1, -1).await?.map(|l| l.meta))
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionSummary>> {
        let index = user_index(user);
        let mut conn = self.connection().await?;
        let watch = self.target.watch(&conn);
        let members: Vec<String> = watch
            .done(
                redis::cmd("ZREVRANGE")
                    .arg(&index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await,
            )
            .map_err(|e| self.failed(&conn, e))?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        let mut keys = Vec::with_capacity(members.len());
        for session in &members {
            let Ok(key) = SessionKey::new(user, session.as_str()) else {
                tracing::warn!(store = %self.url, user, session, "skipping an invalid session name in the index");
                continue;
            };
            let k = SessionKeys::new(&key);
            pipe.cmd("HMGET")
                .arg(&k.meta)
                .arg(&["count", "bytes", "created_at", "updated_at"])
                .cmd("PTTL")
                .arg(&k.meta);
            keys.push(key);
        }
        let watch = self.target.watch(&conn);
        let replies: Vec<Value> = watch
            .done(pipe.query_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        let now = now_ms();
        let mut out = Vec::with_capacity(keys.len());
        let mut stale = Vec::new();
        for (key, pair) in keys.iter().zip(replies.chunks(2)) {
            let (Some(Value::Array(fields)), Some(pttl)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let num = |i: usize| fields.get(i).and_then(value_i64);
            let (Some(count), Some(created), Some(updated)) = (num(0), num(2), num(3)) else {
                stale.push(key.session().to_string());
                continue;
            };
            let pttl = value_i64(pttl).unwrap_or(-1);
            out.push(SessionSummary {
                session: key.session().to_string(),
                message_count: count.max(0) as u64,
                bytes: num(1).unwrap_or(0).max(0) as u64,
                created_at: millis_to_datetime(created),
                updated_at: millis_to_datetime(updated),
                ttl_remaining_secs: remaining_secs((pttl >= 0).then(|| now + pttl), now),
            });
        }
        if !stale.is_empty() {
            // Sessions that expired leave their name in the index; tidy up lazily.
            let removed: redis::RedisResult<i64> = redis::cmd("ZREM")
                .arg(&index)
                .arg(&stale)
                .query_async(&mut conn)
                .await;
            if let Err(e) = removed {
                tracing::debug!(store = %self.url, error = %e, "could not tidy the session index");
            }
        }
        out.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(a.session.cmp(&b.session))
        });
        Ok(out)
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.delete.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(key.session());
        let mut conn = self.connection().await?;
        let watch = self.target.watch(&conn);
        let existed: i64 = watch
            .done(inv.invoke_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        Ok(existed == 1)
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.connection().await?;
        let watch = self.target.watch(&conn);
        let _: String = watch
            .done(redis::cmd("PING").query_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))?;
        Ok(())
    }

    fn unchanged_since(&self, key: &SessionKey, stamp: Stamp) -> bool {
        self.target
            .tracker()
            .is_some_and(|t| t.unchanged_since(key, stamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> Value {
        let mut flat = Vec::new();
        for (k, v) in fields {
            flat.push(bulk(k));
            flat.push(bulk(v));
        }
        Value::Array(vec![bulk(id), Value::Array(flat)])
    }

    #[test]
    fn decodes_a_good_entry_and_reports_bad_ones() {
        let id = crate::message::MessageId::new().to_string();
        let good = [
            ("id", id.as_str()),
            ("role", "user"),
            ("content", "hi"),
            ("sources", ""),
            ("ts", "1700000000000"),
            ("status", "complete"),
        ];
        let (seq, m) = decode_entry(&entry("7-0", &good)).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(m.content, "hi");

        let mut no_role = good;
        no_role[1] = ("rolex", "user");
        let err = decode_entry(&entry("8-0", &no_role)).unwrap_err();
        assert_eq!(err.seq, Some(8));
        assert!(err.reason.contains("role"), "{}", err.reason);

        let mut bad_sources = good;
        bad_sources[3] = ("sources", "{not json");
        assert!(decode_entry(&entry("9-0", &bad_sources))
            .unwrap_err()
            .reason
            .contains("JSON"));
        assert!(decode_entry(&bulk("x")).is_err());
        assert!(decode_entry(&entry("abc", &good)).is_err());
    }
}
