//! `redis://`, `rediss://` and `redis+cluster://`: sessions shared by every app server
//! on one Redis or one Redis Cluster.
//!
//! Key layout in [`keys`]. Every operation on a session is one Lua script, so it is one
//! round trip and atomic:
//! - `turn.lua`: the lean append of a turn, for a session that exists and whose seq
//!   this store saw in its last reply (the messages come packed with their seqs). It
//!   handles the common case and declines, writing nothing, whatever else comes up
//!   (`append.lua` then runs); see "The lean append" below;
//! - `append.lua`: check the quotas, skip ids already stored, `RPUSH` the rest packed
//!   ([`pack`]) in one command, update the figures and the dedupe buckets in one `HSET`,
//!   trim beyond `max_messages` with one `LPOP` (the trimmed ids stay remembered),
//!   touch the user's session index and usage total, `EXPIRE` every key when due;
//! - `load.lua`: the figures plus a bounded run of messages (oldest after a seq, or
//!   newest) by `LRANGE` at computed positions, refreshing TTLs: no script ever walks a
//!   whole session, so one user's 100 MB conversation cannot keep Redis busy for
//!   everyone else;
//! - `delete.lua`: every key of the session in both layouts, its index entry and its
//!   usage share;
//! - `title.lua`: sets or clears the title a person gave the session (`title`; the
//!   append sets the automatic one, `auto`, once);
//! - `convert.lua`: one bounded step of moving a v1 session into v2.
//!
//! Each starts with `buckets.lua` (the dedupe buckets) and `common.lua`: packing helpers,
//! the v1 conversion and the repair of a session whose keys Redis evicted one by one
//! (under `maxmemory`; [`eviction`] tells the operator when Redis may do that). The
//! scripts end by reading the session's hash after their writes: that keeps it in this
//! connection's RESP3 tracking table, so Redis tells this process when another one
//! changes it and a cached copy can be served without a round trip ([`tracking`]).
//!
//! # Layout v2, and why
//!
//! v1 kept a STREAM entry of six fields per message, a meta HASH and a SET of message
//! ids. An append of a turn ran about ten commands (HMGET, EXISTS, SADD and XADD per
//! message, HSET, ZADD, HINCRBY, EXISTS), and a message of 300 bytes took about 540
//! bytes of Redis memory; the id set forgot the ids of trimmed messages, so a late
//! replay of one stored it again. Candidates, measured for 1000 messages of 300 bytes
//! by `benches/layout/run` (numbers in BENCHMARKS.md):
//! - one packed value per message instead of six fields: in a STREAM (one field) about
//!   420 bytes per message, in a LIST about 358: a stream entry carries an id and
//!   per-entry flags and its nodes are smaller, a list element is the value and a
//!   few bytes. Positions in a list are implicit (seq = trimmed + 1 + index), so every
//!   packed value also carries its seq, which reads check;
//! - dedupe: a SET of the raw 16-byte ids costs about 64 bytes per id (an entry per
//!   member), 256 hash fields of concatenated ids about 21, and they can live in the
//!   session's own hash, read by the same HMGET as the figures and written by the same
//!   HSET: no command of their own. A lookup is a `string.find` in one bucket.
//!   Trimming does not remove ids, so the record never forgets (16 bytes per message
//!   ever stored). With 256 buckets a bucket grew by one id per 256 messages, and
//!   every append copied two of them into Lua and back: 24 us a call at 1 000 ids,
//!   51-58 us at 50 000. Past 16 ids a bucket the buckets now split one at a time
//!   (linear hashing, `buckets.lua`), and the same call costs about the same at 10 000
//!   and at 50 000 ids (BENCHMARKS.md, "Buckets that split").
//! - ids that carry their own order (UUIDv7) or a high-water mark per writer were
//!   rejected: ids from an `Idempotency-Key` are hashes, imported ids are anything,
//!   and a journal replays after later direct appends, so "older than the mark" does
//!   not mean "stored".
//!
//! The v2 append is HMGET, RPUSH(X), HSET, ZADD, HINCRBY and PTTL: six commands for a
//! turn, one more (EXISTS of the v1 keys) while `StoreOptions::v1_guard` is on. Measured,
//! memory met its target (content + 94 bytes per message, v1 + 240) but Redis's CPU per
//! turn did not fall: the Lua between the commands now costs about as much as the
//! commands (BENCHMARKS.md, "Storage format v2").
//!
//! # The lean append
//!
//! Redis's Lua is slow next to its commands: every string a script makes is hashed in
//! full, every `redis.call` converts its arguments and reply, and an `EVALSHA` pays for
//! each key and argument before its first line runs. `append.lua` handles every case
//! (creation, conversion, repair, quotas to recount, TTL refreshes, ids given twice) and
//! pays for that generality on every turn: it re-packs each message to set its seq and
//! walks tables of ids and buckets. `turn.lua` does a turn's work and nothing else, with
//! four keys instead of seven:
//! - the caller packs the messages with the seqs that follow the one it last saw
//!   (`session::Positions`, a bounded map filled from every append and read reply); the
//!   script compares that seq with the hash's, so a stale guess is declined, never
//!   written;
//! - the same HMGET reads the figures and the messages' buckets; an id found there (a
//!   replay), a quota it would have to recount, an evicted list or a missing session
//!   sends the call to `append.lua`, which then costs a second round trip;
//! - the writes are `append.lua`'s, command for command: `tests/redis_lean.rs` runs the
//!   same calls through both and compares every key.
//!
//! A TTL refresh (at least every tenth of the TTL) always takes the full script, which
//! also runs the v1 guard's check then. What the lean script saves is measured by
//! `benches/layout/script_cost.py --turn` and `benches/layout/run` (BENCHMARKS.md).
//!
//! What is left is the commands themselves: the lean append's six, issued from a script
//! with none of its logic (`benches/layout/floor.lua`), cost Redis 1.9-2.1x the CPU of an
//! RPUSH of 300 bytes, where the lean append costs 2.4-2.7x. Redis Functions were measured
//! and do not lower the lean append's cost (it defines two small functions; a library
//! saves only their making), so the scripts stay `EVALSHA`s, which need no loading per
//! release or per cluster master.
//!
//! On a machine of two cores, the rates are bounded by more than Redis: through redis-rs
//! (the `redis_client_floor` example), `floor.lua` at one client runs at 0.45-0.78x
//! redis-benchmark's RPUSH rate, and at 50 clients a turn is held back as much by the
//! client's own work per turn as by Redis's (BENCHMARKS.md, "What the client costs").
//!
//! # From v1
//!
//! A v2 server reads v1 sessions by converting them: the first script that finds one
//! moves it into v2 (`convert.lua`: at most 1 MB of messages per step; the caller
//! runs steps until done, other clients' commands in between), keeping its seqs. For a
//! rolling deploy, where v1 servers keep writing v1 keys for sessions a v2 server has
//! converted, the guard (on by default) makes every v2 call look for v1 keys and merge
//! what it finds (deduped by id, appended after the v2 messages). Turn it off
//! (`--redis-v1-guard off`) once no v1 server is left; it costs one EXISTS per call.
//! A v1 server sees only what it wrote after the conversion while the deploy lasts.
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
mod pack;
mod scripts;
mod session;
pub mod tracking;
mod users;
#[doc(hidden)]
pub mod v1;
#[doc(hidden)]
pub mod v2_0;
mod walk;

use async_trait::async_trait;
use redis::cluster::ClusterClient;

use self::conn::{Conn, LazyCluster, SingleNode, Target};
pub use self::decode::decode_entry;
use self::decode::{classify, quota_breach, value_i64};
pub use self::hot::{Claim, SweepWalk, Unarchived};
use self::scripts::Scripts;
use redis::{Client, RedisError, Value};

use self::keys::SessionKeys;
use super::shared::now_ms;
use crate::error::{MemoryError, Result};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::spec::{redact_url, RedisLocation, StoreOptions};
use crate::store::{
    AppendOptions, AppendOutcome, Durability, LoadedSession, SessionMeta, SessionPage,
    SessionStore, Stamp, StoreKind, Ttl,
};

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
    /// Look for v1 keys on every call (`StoreOptions::v1_guard`).
    v1_guard: bool,
    /// The sessions' seqs and bucket counts as last seen, for the lean append.
    positions: session::Positions,
    /// Try the lean append first (see `session.rs`).
    lean: bool,
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
            v1_guard: opts.v1_guard,
            positions: session::Positions::new(),
            lean: opts.lean_append,
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
            v1_guard: opts.v1_guard,
            positions: session::Positions::new(),
            lean: opts.lean_append,
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

    /// Runs a script invocation for `key` and returns its reply with the stamp taken
    /// just before it was sent (see [`tracking`]). A quota refusal of the append script
    /// comes back as `Quota`, worded with the session's name. A session still in the v1
    /// layout that takes more than one step to convert (CONVERTING) is converted a
    /// bounded step per call, other clients' commands running in between, and then the
    /// invocation runs again.
    async fn invoke_stamped(
        &self,
        inv: &redis::ScriptInvocation<'_>,
        key: &SessionKey,
    ) -> Result<(Value, Option<Stamp>)> {
        let mut conn = self.connection().await?;
        loop {
            let stamp = self.stamp(&conn);
            let watch = self.target.watch(&conn);
            return match watch.done(inv.invoke_async(&mut conn).await) {
                Ok(value) => Ok((value, stamp)),
                Err(e) if says(&e, "MISSING") => Err(MemoryError::NotFound(key.session().into())),
                Err(e) if says(&e, "CONVERTING") => {
                    self.convert(&mut conn, key).await?;
                    continue;
                }
                Err(e) => Err(match quota_breach(&e) {
                    Some(breach) => breach.into_error(key.session()),
                    None => self.failed(&conn, e),
                }),
            };
        }
    }

    /// Converts `key` from the v1 layout, one bounded step per script call.
    async fn convert(&self, conn: &mut Conn, key: &SessionKey) -> Result<()> {
        let keys = SessionKeys::new(key);
        let mut inv = self.scripts.convert.prepare_invoke();
        for k in keys.all() {
            inv.key(k);
        }
        let mut steps = 0u64;
        loop {
            let watch = self.target.watch(conn);
            let done: i64 = watch
                .done(inv.invoke_async(conn).await)
                .map_err(|e| self.failed(conn, e))?;
            steps += 1;
            if done == 1 {
                tracing::info!(store = %self.url, session = %key, steps, "converted a conversation from the v1 layout");
                return Ok(());
            }
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

    fn corrupt(&self, what: String) -> MemoryError {
        MemoryError::Corrupt(format!("{}: {what}", self.url))
    }
}

/// Whether a script's error carries `code` (single nodes and clusters word errors
/// differently).
fn says(e: &RedisError, code: &str) -> bool {
    e.code() == Some(code) || e.to_string().contains(code)
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
        for k in keys.all() {
            inv.key(k);
        }
        inv.arg(key.session())
            .arg(now_ms())
            .arg(u8::from(title.is_some()))
            .arg(title.unwrap_or_default())
            .arg(u8::from(self.v1_guard));
        let (value, _) = self.invoke_stamped(&inv, key).await?;
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
