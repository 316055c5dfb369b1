//! The connection a `RedisStore` talks through: one multiplexed RESP3 connection to a
//! single Redis with client-side caching turned on ([`SingleNode`]), or a cluster
//! connection that routes each command to its slot's master ([`LazyCluster`]). Both
//! are created once and cloned per call.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Client, Cmd, Pipeline, ProtocolVersion, PushInfo, PushKind, RedisError,
    RedisFuture, RedisResult, Value,
};

use super::tracking::Tracker;

/// One Redis server over one multiplexed connection, made on first use and made again
/// on the next call after it drops.
///
/// Each connection is a *generation*. It speaks RESP3 and has `CLIENT TRACKING ON
/// NOLOOP` turned on before any command uses it, so its [`Tracker`] hears about every
/// change other connections make to sessions this process read (see [`super::tracking`]).
/// A server that refuses RESP3 or tracking still works: reads then ask it every time.
///
/// A tracked connection vouches for cached copies only while it delivers: a connection
/// that went silent without closing (a black-holed network) would deliver no
/// invalidation and raise no error while the process only reads from its cache. So
/// while it is idle (nothing answered on it for a `heartbeat`), a heartbeat `PING`s it
/// every `heartbeat`, bounded by the command timeout; unanswered, the connection's
/// generation ends (stamps of it go stale and the next call reconnects). A stale copy is
/// thus served for at most about the heartbeat plus the timeout. A busy connection is
/// not pinged: its own calls show that it delivers (and one that stops mid-call is
/// replaced by [`CallWatch`]), and a PING queued behind a busy server's work would end
/// a healthy connection for nothing.
pub(super) struct SingleNode {
    client: Client,
    /// The same server over RESP2, used once the server refused `HELLO 3`.
    client_resp2: Client,
    resp2_only: AtomicBool,
    config: AsyncConnectionConfig,
    connect_timeout: Duration,
    command_timeout: Duration,
    heartbeat: Duration,
    current: Mutex<Option<Live>>,
    connecting: tokio::sync::Mutex<()>,
    generations: AtomicU64,
    pub(super) tracker: Arc<Tracker>,
    /// When a reply last arrived on the current connection (ms since `born`).
    last_heard: Arc<AtomicU64>,
    born: Instant,
    /// The server refused `CLIENT TRACKING` (said once in the log).
    untracked_said: AtomicBool,
}

#[derive(Clone)]
struct Live {
    conn: MultiplexedConnection,
    generation: u64,
    /// Set by the connection's read loop when the socket closes.
    dead: Arc<AtomicBool>,
}

impl SingleNode {
    /// A node for `client` (its protocol setting is overridden).
    pub(super) fn new(
        client: Client,
        connect_timeout: Duration,
        command_timeout: Duration,
        heartbeat: Duration,
    ) -> RedisResult<Self> {
        let info = client.get_connection_info().clone();
        let with = |protocol| {
            let redis = info.redis_settings().clone().set_protocol(protocol);
            Client::open(info.clone().set_redis_settings(redis))
        };
        Ok(SingleNode {
            client: with(ProtocolVersion::RESP3)?,
            client_resp2: with(ProtocolVersion::RESP2)?,
            resp2_only: AtomicBool::new(false),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(command_timeout)),
            connect_timeout,
            command_timeout,
            heartbeat,
            current: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
            tracker: Arc::new(Tracker::default()),
            last_heard: Arc::new(AtomicU64::new(0)),
            born: Instant::now(),
            untracked_said: AtomicBool::new(false),
        })
    }

    fn live(&self) -> Option<(MultiplexedConnection, u64)> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|l| !l.dead.load(Ordering::SeqCst))
            .map(|l| (l.conn.clone(), l.generation))
    }

    /// The current connection and its generation, connecting first if there is none.
    pub(super) async fn get(&self) -> RedisResult<(MultiplexedConnection, u64)> {
        if let Some(live) = self.live() {
            return Ok(live);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(live) = self.live() {
            return Ok(live);
        }
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let dead = Arc::new(AtomicBool::new(false));
        let (conn, tracked) = match self.connect(generation, &dead).await {
            Err(e) if refuses_resp3(&e) && !self.resp2_only.load(Ordering::SeqCst) => {
                // The server answered but refused the RESP3 handshake (Redis < 6).
                tracing::warn!(error = %e, "Redis refused RESP3: reads will ask it every time (no client-side caching)");
                self.resp2_only.store(true, Ordering::SeqCst);
                self.connect(generation, &dead).await?
            }
            other => other?,
        };
        if tracked {
            self.tracker.activate(generation);
            self.spawn_heartbeat(conn.clone(), generation, Arc::clone(&dead));
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(Live {
            conn: conn.clone(),
            generation,
            dead,
        });
        Ok((conn, generation))
    }

    /// Checks the tracked connection of `generation` every `heartbeat` until it is
    /// replaced, dies or the store is dropped (see the type's docs).
    fn spawn_heartbeat(
        &self,
        mut conn: MultiplexedConnection,
        generation: u64,
        dead: Arc<AtomicBool>,
    ) {
        if self.heartbeat.is_zero() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tracker = Arc::downgrade(&self.tracker);
        let (every, timeout) = (self.heartbeat, self.command_timeout);
        let (last_heard, born) = (Arc::clone(&self.last_heard), self.born);
        let now_ms = move || born.elapsed().as_millis() as u64;
        let every_ms = every.as_millis() as u64;
        runtime.spawn(async move {
            loop {
                // Asleep until `every` after the last reply: a connection is pinged only
                // when it has been silent that long, so a stall is noticed within the
                // heartbeat plus the timeout.
                let silent = now_ms().saturating_sub(last_heard.load(Ordering::Relaxed));
                tokio::time::sleep(Duration::from_millis(
                    every_ms.saturating_sub(silent).max(1),
                ))
                .await;
                let Some(tracker) = tracker.upgrade() else {
                    return;
                };
                if dead.load(Ordering::SeqCst) || !tracker.is_live(generation) {
                    return;
                }
                if now_ms().saturating_sub(last_heard.load(Ordering::Relaxed)) < every_ms {
                    continue;
                }
                let ping = redis::cmd("PING");
                let answer =
                    tokio::time::timeout(timeout, ping.query_async::<String>(&mut conn)).await;
                if !matches!(answer, Ok(Ok(_))) {
                    tracing::debug!(
                        generation,
                        "the Redis connection did not answer its heartbeat: replacing it"
                    );
                    tracker.deactivate(generation);
                    dead.store(true, Ordering::SeqCst);
                    return;
                }
                last_heard.store(now_ms(), Ordering::Relaxed);
            }
        });
    }

    /// A new connection; `true` when tracking is on for it.
    async fn connect(
        &self,
        generation: u64,
        dead: &Arc<AtomicBool>,
    ) -> RedisResult<(MultiplexedConnection, bool)> {
        let timed_out = || {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "Redis did not accept a connection within the connect timeout",
            ))
        };
        if self.resp2_only.load(Ordering::SeqCst) {
            let conn = tokio::time::timeout(
                self.connect_timeout,
                self.client_resp2
                    .get_multiplexed_async_connection_with_config(&self.config),
            )
            .await
            .map_err(|_| timed_out())??;
            return Ok((conn, false));
        }
        let tracker = Arc::clone(&self.tracker);
        let dead_flag = Arc::clone(dead);
        // Called from the connection's read loop, in stream order (see `tracking`).
        let config = self.config.clone().set_push_sender(move |push: PushInfo| {
            if push.kind == PushKind::Disconnection {
                dead_flag.store(true, Ordering::SeqCst);
            }
            tracker.on_push(generation, &push);
            Ok::<(), std::convert::Infallible>(())
        });
        let mut conn = tokio::time::timeout(
            self.connect_timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| timed_out())??;
        let on: RedisResult<()> = redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("NOLOOP")
            .query_async(&mut conn)
            .await;
        match on {
            Ok(()) => Ok((conn, true)),
            Err(e) if e.code().is_some() => {
                // Refused (an ACL without CLIENT, a proxy that does not pass it on).
                if !self.untracked_said.swap(true, Ordering::SeqCst) {
                    tracing::warn!(error = %e, "Redis refused CLIENT TRACKING: reads will ask it every time (no client-side caching)");
                }
                Ok((conn, false))
            }
            Err(e) => Err(e),
        }
    }

    /// A call on the connection of `generation` failed with `e`: a connection that
    /// dropped or stopped answering is replaced on the next call, and what it tracked
    /// is no longer trusted.
    pub(super) fn failed(&self, generation: u64, e: &RedisError) {
        if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_unrecoverable_error()
        {
            self.replace(generation);
        }
    }

    /// A reply arrived on the current connection (the heartbeat need not ask).
    fn heard(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        self.last_heard.store(now, Ordering::Relaxed);
    }

    /// Stops using the connection of `generation` (calls already on it finish) and
    /// stops trusting what it tracked.
    fn replace(&self, generation: u64) {
        self.tracker.deactivate(generation);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|l| l.generation == generation) {
            *current = None;
            tracing::debug!(generation, "replacing the Redis connection");
        }
    }
}

/// Watches one request: dropped before it finished (its caller stopped waiting, e.g.
/// on the store timeout), it has the connection replaced. A connection that stopped
/// answering without closing (a peer that vanished, a failover behind a name) would
/// otherwise be kept until the kernel gives up on it, which takes minutes.
pub(super) struct CallWatch<'a> {
    node: Option<&'a SingleNode>,
    generation: u64,
}

impl CallWatch<'_> {
    /// The request finished (with a reply or an error); passes its result through.
    pub(super) fn done<T>(mut self, result: T) -> T {
        if let Some(node) = self.node.take() {
            node.heard();
        }
        result
    }
}

impl Drop for CallWatch<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            node.replace(self.generation);
        }
    }
}

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

/// Whether a failed handshake means the server does not speak RESP3 (not, say, a
/// wrong password).
fn refuses_resp3(e: &RedisError) -> bool {
    e.code() == Some("NOPROTO")
        || e.to_string()
            .to_ascii_lowercase()
            .contains("unknown command")
}

/// Where commands go.
#[derive(Clone)]
pub(super) enum Target {
    Single(Arc<SingleNode>),
    Cluster(Arc<LazyCluster>),
}

impl Target {
    /// A connection for one call.
    pub(super) async fn connection(&self) -> RedisResult<Conn> {
        match self {
            Target::Single(node) => {
                let (conn, generation) = node.get().await?;
                Ok(Conn::Single(conn, generation))
            }
            Target::Cluster(lazy) => Ok(Conn::Cluster(lazy.get().await?)),
        }
    }

    /// The tracker of a single node (a cluster has none: reads always ask it).
    pub(super) fn tracker(&self) -> Option<&Arc<Tracker>> {
        match self {
            Target::Single(node) => Some(&node.tracker),
            Target::Cluster(_) => None,
        }
    }

    /// A watch for one request on `conn`.
    pub(super) fn watch(&self, conn: &Conn) -> CallWatch<'_> {
        let node = match self {
            Target::Single(node) => Some(node.as_ref()),
            Target::Cluster(_) => None,
        };
        CallWatch {
            node,
            generation: conn.generation(),
        }
    }

    /// Records that a call on `conn` failed with `e`.
    pub(super) fn failed(&self, conn: &Conn, e: &RedisError) {
        if let (Target::Single(node), Conn::Single(_, generation)) = (self, conn) {
            node.failed(*generation, e);
        }
    }
}

/// A connection for one call.
pub(super) enum Conn {
    Single(MultiplexedConnection, u64),
    Cluster(ClusterConnection),
}

impl Conn {
    /// The tracking generation of this connection (0 for a cluster connection).
    pub(super) fn generation(&self) -> u64 {
        match self {
            Conn::Single(_, generation) => *generation,
            Conn::Cluster(_) => 0,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c, _) => c.req_packed_command(cmd),
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
            Conn::Single(c, _) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c, _) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl super::RedisStore {
    /// Runs one plain command on a connection for this call.
    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        cmd: &redis::Cmd,
    ) -> crate::error::Result<T> {
        let mut conn = self.connection().await?;
        let watch = self.target.watch(&conn);
        watch
            .done(cmd.query_async(&mut conn).await)
            .map_err(|e| self.failed(&conn, e))
    }
}
