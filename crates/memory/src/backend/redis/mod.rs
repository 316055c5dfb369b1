//! `redis://`, `rediss://` and `redis+cluster://`: sessions shared by every app server
//! on one Redis or one Redis Cluster.
//!
//! Layout and the reasons for it are in [`keys`]. Every operation on a session is one
//! Lua script, so it is one round trip and atomic:
//! - `append.lua`: check the quotas, skip ids already stored, `XADD` the rest with entry
//!   id `<seq>-0`, update the meta hash, trim beyond `max_messages` (forgetting the
//!   trimmed ids), `EXPIRE` every key of the session, touch the user's session index
//!   and usage total;
//! - `load.lua`: the meta hash plus a bounded run of entries (oldest after a seq, or
//!   newest), refreshing TTLs: no script ever walks a whole session, so one user's
//!   100 MB conversation cannot keep Redis busy for everyone else;
//! - `delete.lua`: every key of the session, its index entry and its usage share;
//! - `title.lua`: sets or clears the title a person gave the session (meta field
//!   `title`; the append sets the automatic one, `auto`, once).
//!
//! `append.lua`, `load.lua` and `title.lua` start with `repair.lua`: a session whose keys Redis
//! evicted one by one (under `maxmemory`) is rebuilt from what is left instead of
//! failing ([`eviction`] tells the operator when Redis may do that).
//!
//! Both scripts end by reading the meta hash, after their writes: that keeps the
//! session in this connection's RESP3 tracking table, so Redis tells this process when
//! another one changes it and a cached copy can be served without a round trip
//! ([`tracking`]).
//!
//! One multiplexed connection is made per store (on first use, and again after it
//! drops) and shared by every call; it applies the connect and response timeouts.

mod conn;
mod decode;
mod durability;
mod eviction;
mod hot;
mod identity;
pub mod keys;
mod list;
pub mod tracking;
mod users;
mod walk;

use async_trait::async_trait;
use redis::cluster::ClusterClient;

use self::conn::{Conn, LazyCluster, SingleNode, Target};
pub use self::decode::decode_entry;
use self::decode::{classify, decode_meta, quota_breach, value_i64};
pub use self::hot::{Claim, SweepWalk, Unarchived};
use redis::{Client, RedisError, Script, Value};

use self::keys::SessionKeys;
use super::shared::{now_ms, report_corrupt};
use crate::error::{MemoryError, Result};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::spec::{redact_url, RedisLocation, StoreOptions};
use crate::store::{
    AppendOptions, AppendOutcome, Durability, LoadedSession, SessionMeta, SessionPage,
    SessionStore, Stamp, StoreKind, Ttl,
};
use crate::title::title_of;

/// Sessions in Redis: a single node (`redis://`, `rediss://`) or a Redis Cluster
/// (`redis+cluster://h1:p1,h2:p2`, `rediss+cluster://...`).
#[derive(Clone)]
pub struct RedisStore {
    target: Target,
    url: String,
    identity: String,
    scripts: Scripts,
    hot: hot::HotScripts,
    /// The hot tier of an archive (see [`hot`]).
    tiered: bool,
}

#[derive(Clone)]
struct Scripts {
    append: Script,
    load: Script,
    delete: Script,
    title: Script,
}

impl Scripts {
    fn load() -> Self {
        Scripts {
            append: Script::new(concat!(
                include_str!("repair.lua"),
                include_str!("append.lua")
            )),
            load: Script::new(concat!(
                include_str!("repair.lua"),
                include_str!("load.lua")
            )),
            delete: Script::new(include_str!("delete.lua")),
            title: Script::new(concat!(
                include_str!("repair.lua"),
                include_str!("title.lua")
            )),
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
    /// Connects to the Redis at `url` (at once, or on first use with `opts.lazy`):
    /// `redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`, or any other
    /// URL the Redis client takes for one node (`redis+unix://`).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed URL; `Unavailable` when Redis does not answer
    /// within the connect timeout (never with `opts.lazy`).
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self> {
        let (location, cluster) = RedisLocation::from_url(url)?;
        if cluster {
            Self::open_cluster(&location, opts).await
        } else {
            Self::open_node(&location, opts).await
        }
    }

    /// Connects to the single Redis at `location` (see [`RedisStore::connect`]).
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn open_node(location: &RedisLocation, opts: &StoreOptions) -> Result<Self> {
        let redacted = redact_url(location.url());
        let info = location
            .connection_infos()
            .first()
            .cloned()
            .ok_or_else(|| {
                MemoryError::invalid(format!("the Redis URL {redacted:?} names no server"))
            })?;
        let client = Client::open(info).map_err(|e| {
            MemoryError::invalid(format!("cannot parse Redis URL {redacted:?}: {e}"))
        })?;
        let node = SingleNode::new(
            client,
            opts.connect_timeout,
            opts.command_timeout,
            opts.heartbeat,
        )
        .map_err(|e| classify(&redacted, e))?;
        let store = RedisStore {
            target: Target::Single(std::sync::Arc::new(node)),
            url: redacted,
            identity: identity::store_identity(location, false),
            scripts: Scripts::load(),
            hot: hot::HotScripts::load(),
            tiered: false,
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

    /// Connects to the Redis Cluster at `location` (see [`RedisStore::connect`]).
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn open_cluster(location: &RedisLocation, opts: &StoreOptions) -> Result<Self> {
        let redacted = redact_url(location.url());
        let client = ClusterClient::builder(location.connection_infos().to_vec())
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
            url: redacted,
            identity: identity::store_identity(location, true),
            scripts: Scripts::load(),
            hot: hot::HotScripts::load(),
            tiered: false,
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

    /// Runs a script invocation for `session` and returns its reply with the stamp
    /// taken just before it was sent (see [`tracking`]). A quota refusal of the append
    /// script comes back as `Quota`, worded with the session's name.
    async fn invoke_stamped(
        &self,
        inv: &redis::ScriptInvocation<'_>,
        session: &str,
    ) -> Result<(Value, Option<Stamp>)> {
        let mut conn = self.connection().await?;
        let stamp = self.stamp(&conn);
        let watch = self.target.watch(&conn);
        match watch.done(inv.invoke_async(&mut conn).await) {
            Ok(value) => Ok((value, stamp)),
            Err(e) if e.code() == Some("MISSING") || e.to_string().contains("MISSING") => {
                Err(MemoryError::NotFound(session.to_string()))
            }
            Err(e) => Err(match quota_breach(&e) {
                Some(breach) => breach.into_error(session),
                None => self.failed(&conn, e),
            }),
        }
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

    /// Runs the load script: `from` = `None` reads no entries; `ttl = -1` leaves
    /// TTLs alone.
    async fn run_load(
        &self,
        key: &SessionKey,
        from: Option<ReadFrom>,
        limit: ReadLimit,
        ttl: i64,
    ) -> Result<Option<LoadedSession>> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.load.prepare_invoke();
        for k in keys.all().into_iter().take(4) {
            inv.key(k);
        }
        let (mode, after) = match from {
            None => ("meta", 0),
            Some(ReadFrom::After(after)) => ("after", after),
            Some(ReadFrom::Newest { after }) => ("newest", after),
        };
        inv.arg(mode)
            .arg(after.min(i64::MAX as u64))
            .arg(limit.messages.max(1))
            .arg(limit.bytes.min(i64::MAX as u64))
            .arg(ttl)
            .arg(key.session())
            .arg(now_ms())
            .arg(u8::from(self.tiered));
        let (value, stamp) = self.invoke_stamped(&inv, key.session()).await?;
        let items = match value {
            Value::Nil | Value::Boolean(false) => return Ok(None),
            Value::Array(items) => items,
            other => return Err(self.corrupt(format!("load script returned {other:?}"))),
        };
        let meta = decode_meta(&items, 10, |what| self.corrupt(what))?;
        let mut messages = Vec::new();
        let mut corrupt = Vec::new();
        if let Some(Value::Array(entries)) = items.get(7) {
            messages.reserve(entries.len());
            for entry in entries {
                match decode_entry(entry) {
                    Ok(m) => messages.push(m),
                    Err(bad) => corrupt.push(bad),
                }
            }
            report_corrupt(&self.url, key, &corrupt);
        }
        let flag = |i: usize| items.get(i).and_then(value_i64).unwrap_or(0) == 1;
        let repaired = flag(9);
        if repaired {
            tracing::warn!(store = %self.url, session = %key, "repaired a conversation whose keys Redis had evicted");
        }
        Ok(Some(LoadedSession {
            meta,
            messages,
            corrupt,
            stamp,
            more: flag(8),
            repaired,
        }))
    }

    /// The append script with its `tier` argument (see `append.lua`); `Ok(None)` when
    /// tier 2 found no session.
    async fn append_with_tier(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
        tier: u8,
    ) -> Result<Option<AppendOutcome>> {
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
            .arg(u8::from(opts.refresh_ttl))
            .arg(opts.quotas.session_bytes)
            .arg(opts.quotas.user_sessions)
            .arg(opts.quotas.user_bytes)
            .arg(title_of(messages).unwrap_or_default())
            .arg(tier);
        for m in messages {
            inv.arg(m.id.to_string())
                .arg(m.role.as_str())
                .arg(m.content.as_str())
                .arg(m.sources_json())
                .arg(m.created_at_millis())
                .arg(m.status.as_str());
        }
        let (value, stamp) = match self.invoke_stamped(&inv, key.session()).await {
            Ok(reply) => reply,
            Err(MemoryError::NotFound(_)) if tier == 2 => return Ok(None),
            Err(e) => return Err(e),
        };
        let Value::Array(items) = value else {
            return Err(self.corrupt(format!("append script returned {value:?}")));
        };
        let meta = decode_meta(&items, 8, |what| self.corrupt(what))?;
        let repaired = items.get(7).and_then(value_i64) == Some(1);
        if repaired {
            tracing::warn!(store = %self.url, session = %key, "repaired a conversation whose keys Redis had evicted");
        }
        let seqs = items
            .iter()
            .skip(9)
            .map(|v| value_i64(v).filter(|s| *s > 0).map(|s| s as u64))
            .collect::<Vec<_>>();
        if seqs.len() != messages.len() {
            return Err(self.corrupt(format!(
                "append script returned {} seqs for {} messages",
                seqs.len(),
                messages.len()
            )));
        }
        Ok(Some(AppendOutcome {
            seqs,
            meta,
            stamp,
            repaired,
        }))
    }

    fn corrupt(&self, what: String) -> MemoryError {
        MemoryError::Corrupt(format!("{}: {what}", self.url))
    }
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

    fn identity(&self) -> String {
        self.identity.clone()
    }

    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        let tier = u8::from(self.tiered);
        let outcome = self.append_with_tier(key, messages, opts, tier).await?;
        outcome.ok_or_else(|| MemoryError::NotFound(key.to_string()))
    }

    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        self.run_load(key, Some(from), limit, ttl_arg(ttl)).await
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        Ok(self
            .run_load(key, None, ReadLimit::new(1, 0), -1)
            .await?
            .map(|l| l.meta))
    }

    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        self.list_page(user, after, limit).await
    }

    /// A page costs a scan of the whole keyspace (every master of a cluster): see the
    /// `users` module.
    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.user_page(after, limit).await
    }

    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.title.prepare_invoke();
        for k in keys.all().into_iter().take(4) {
            inv.key(k);
        }
        inv.arg(key.session())
            .arg(now_ms())
            .arg(u8::from(title.is_some()))
            .arg(title.unwrap_or_default());
        let (value, _) = self.invoke_stamped(&inv, key.session()).await?;
        Ok(value_i64(&value) == Some(1))
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
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    fn unchanged_since(&self, key: &SessionKey, stamp: Stamp) -> bool {
        self.target
            .tracker()
            .is_some_and(|t| t.unchanged_since(key, stamp))
    }

    async fn warnings(&self) -> Vec<String> {
        self.eviction_warnings().await
    }

    fn keeps_idle_sessions(&self) -> bool {
        false
    }

    async fn durability(&self) -> Durability {
        self.read_durability().await
    }
}
