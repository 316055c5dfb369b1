//! The conformance suite on a real `redis-server` started by the harness, plus the
//! Redis specifics: persistence across a restart, many writers on two managers, round
//! trips per operation, and corrupt entries planted with redis-cli.
#![cfg(feature = "redis")]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::testing::{self, assert_writer_order, unique_key, StoreFixture};
use ragchat_memory::{
    ManagerConfig, Message, SessionKey, SessionManager, SessionStore, StoreOptions,
};
use ragchat_testkit::{redis_or_skip, RedisServer};

struct Fixture {
    server: RedisServer,
}

#[async_trait]
impl StoreFixture for Fixture {
    async fn open(&self) -> Arc<dyn SessionStore> {
        Arc::new(connect(&self.server).await)
    }

    async fn plant_corrupt(&self, key: &SessionKey) -> bool {
        let keys = SessionKeys::new(key);
        let seq: u64 = self
            .server
            .cli(&["HGET", &keys.meta, "seq"])
            .parse()
            .unwrap();
        let next = seq + 1;
        let id = format!("{next}-0");
        let reply = self.server.cli(&[
            "XADD", &keys.log, &id, "id", "garbage", "role", "robot", "content", "x",
        ]);
        assert_eq!(reply, id, "planting failed: {reply}");
        self.server
            .cli(&["HSET", &keys.meta, "seq", &next.to_string()]);
        self.server.cli(&["HINCRBY", &keys.meta, "count", "1"]);
        true
    }
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url(), &StoreOptions::default())
        .await
        .expect("connect to the harness redis")
}

/// A manager on `server` whose sessions expire after `secs` idle seconds.
async fn with_ttl(server: &RedisServer, secs: u64) -> SessionManager {
    let config = ManagerConfig {
        ttl: ragchat_memory::Ttl::secs(secs),
        ..ManagerConfig::default()
    };
    SessionManager::new(Arc::new(connect(server).await), config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    testing::run_all(&Fixture { server }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_a_restart_with_appendonly() {
    let Some(mut server) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let key = unique_key("aof");
    {
        let manager =
            SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
        for i in 0..20 {
            manager
                .append(
                    &key,
                    vec![
                        Message::user(format!("q{i}")),
                        Message::assistant(format!("a{i}")),
                    ],
                )
                .await
                .unwrap();
        }
    }
    server.restart();
    let manager = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let history = manager.history(&key).await.unwrap();
    assert_eq!(history.len(), 40);
    assert_eq!(history.iter().next().unwrap().content, "q0");
    assert_eq!(history.last().unwrap().content, "a19");
    let stats = manager.stats(&key).await.unwrap().unwrap();
    assert_eq!(stats.message_count, 40);
    assert!(stats.ttl_remaining_secs.unwrap() > 3500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_four_writers_each_keep_every_message_once() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let a = Arc::new(SessionManager::new(
        Arc::new(connect(&server).await),
        ManagerConfig::default(),
    ));
    let b = Arc::new(SessionManager::new(
        Arc::new(connect(&server).await),
        ManagerConfig::default(),
    ));
    let key = unique_key("race");
    let per_task = 250;
    let mut handles = Vec::new();
    for t in 0..8 {
        let manager = if t < 4 { a.clone() } else { b.clone() };
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                manager
                    .append(&key, vec![Message::user(format!("task {t} msg {i}"))])
                    .await
                    .expect("append");
                if i % 50 == 0 {
                    // Interleave reads so the caches are exercised while writers race.
                    manager.history(&key).await.expect("history");
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Each manager sees the other's last appends once their invalidations arrive.
    let ha = testing::read_until(&a, &key, |h| h.len() == 2000).await;
    let hb = testing::read_until(&b, &key, |h| h.len() == 2000).await;
    assert_eq!(ha.len(), 2000);
    assert_eq!(ha, hb, "the two managers' cached views differ");
    assert_writer_order(&ha, 8, per_task);
    let fresh = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    assert_eq!(fresh.history(&key).await.unwrap().to_vec(), ha);
    assert_eq!(
        fresh.stats(&key).await.unwrap().unwrap().message_count,
        2000
    );
}

/// Watches a server with `MONITOR` and counts the commands clients send it; commands
/// that scripts run inside Redis are not client calls and are not counted.
struct CallCounter {
    child: std::process::Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
    port: u16,
}

impl CallCounter {
    fn start(server: &RedisServer) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new("redis-cli")
            .args(["-p", &server.port().to_string(), "MONITOR"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli MONITOR");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().unwrap().push(line);
            }
        });
        let counter = CallCounter {
            child,
            lines,
            port: server.port(),
        };
        counter.wait_for("OK");
        counter
    }

    fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "MONITOR never showed {needle:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Client commands seen since the last call, by name (lowercase).
    fn take(&self, server: &RedisServer) -> HashMap<String, u64> {
        let marker = format!("marker-{}", ragchat_memory::MessageId::new());
        server.cli(&["ECHO", &marker]);
        self.wait_for(&marker);
        let lines: Vec<String> = std::mem::take(&mut *self.lines.lock().unwrap());
        let mut calls = HashMap::new();
        for line in lines.iter().filter(|l| !l.contains(&marker) && l != &"OK") {
            // 1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "..." ; script calls say [0 lua]
            if line.contains(" lua] ") {
                continue;
            }
            let name = line.split('"').nth(1).unwrap_or("?").to_lowercase();
            *calls.entry(name).or_insert(0) += 1;
        }
        let _ = self.port;
        calls
    }
}

impl Drop for CallCounter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn count_calls<F, Fut>(
    counter: &CallCounter,
    server: &RedisServer,
    f: F,
) -> HashMap<String, u64>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    counter.take(server);
    f().await;
    counter.take(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_one_call_and_a_current_cached_read_none() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let manager = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let key = unique_key("calls");
    // Warm up: load the scripts and the cache.
    manager
        .append(&key, vec![Message::user("warm"), Message::assistant("up")])
        .await
        .unwrap();
    manager.history(&key).await.unwrap();
    let counter = CallCounter::start(&server);

    let calls = count_calls(&counter, &server, || async {
        manager
            .append(&key, vec![Message::user("q"), Message::assistant("a")])
            .await
            .unwrap();
    })
    .await;
    assert_eq!(
        calls,
        HashMap::from([("evalsha".to_string(), 1)]),
        "an append"
    );

    // Redis tracks the session for this connection and nobody else changed it: the
    // cached copy is served without asking.
    let calls = count_calls(&counter, &server, || async {
        let h = manager.history(&key).await.unwrap();
        assert_eq!(h.len(), 4);
    })
    .await;
    assert_eq!(calls, HashMap::new(), "a current cached read");

    for i in 0..200 {
        manager
            .append(&key, vec![Message::user(format!("more {i}"))])
            .await
            .unwrap();
    }
    let calls = count_calls(&counter, &server, || async {
        assert_eq!(manager.history(&key).await.unwrap().len(), 204);
    })
    .await;
    assert_eq!(calls, HashMap::new(), "a cached read of a long session");
    let reads = manager.status().await.unwrap().reads;
    // The warm-up read too: the append had just made the copy current.
    assert_eq!((reads.from_cache, reads.from_store), (3, 0), "{reads:?}");

    // A confirmed read (what people look at) asks Redis all the same.
    manager.history_confirmed(&key).await.unwrap(); // loads the read script
    let calls = count_calls(&counter, &server, || async {
        assert_eq!(manager.history_confirmed(&key).await.unwrap().len(), 204);
    })
    .await;
    assert_eq!(calls, HashMap::from([("evalsha".to_string(), 1)]));
}

/// Reads on `manager` until `key` holds `want` messages (Redis pushes the invalidation
/// as it executes the other write; the connection reads it moments later).
async fn until_len(manager: &SessionManager, key: &SessionKey, want: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let h = manager.history(key).await.unwrap();
        if h.len() == want {
            return h.iter().map(|m| m.content.clone()).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {} messages instead of {want}",
            h.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_servers_write_reaches_a_cached_copy() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let store_a = Arc::new(connect(&server).await);
    let a = SessionManager::new(store_a.clone(), ManagerConfig::default());
    let b = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let key = unique_key("xserver");
    a.append(&key, vec![Message::user("one")]).await.unwrap();
    assert_eq!(a.history(&key).await.unwrap().len(), 1);
    let counter = CallCounter::start(&server);

    // Appends, a delete and a recreation by another server all reach A's copy.
    b.append(&key, vec![Message::assistant("two")])
        .await
        .unwrap();
    assert_eq!(until_len(&a, &key, 2).await, ["one", "two"]);
    assert!(store_a.invalidations_received() >= 1);
    // B's append and at least one read of A's that fetched what changed.
    let calls = counter.take(&server);
    assert!(calls.get("evalsha").copied().unwrap_or(0) >= 2, "{calls:?}");

    b.delete(&key).await.unwrap();
    assert!(until_len(&a, &key, 0).await.is_empty());
    b.append(&key, vec![Message::user("again")]).await.unwrap();
    assert_eq!(until_len(&a, &key, 1).await, ["again"]);

    // Once A caught up, its reads stop asking.
    a.history(&key).await.unwrap();
    counter.take(&server);
    a.history(&key).await.unwrap();
    assert_eq!(counter.take(&server), HashMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_or_a_flush_makes_cached_copies_ask_again() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let a = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let b = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let key = unique_key("lost");
    a.append(&key, vec![Message::user("one")]).await.unwrap();
    assert_eq!(a.history(&key).await.unwrap().len(), 1);

    // Drop every client connection: A's tracking ends with it, so changes made before
    // A reconnects cannot be announced to it; its copy must not be trusted any more.
    server.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    b.append(&key, vec![Message::assistant("two")])
        .await
        .unwrap();
    assert_eq!(until_len(&a, &key, 2).await, ["one", "two"]);

    server.cli(&["FLUSHALL"]);
    assert!(until_len(&a, &key, 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_read_refreshes_the_ttl_at_least_every_tenth_of_it() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    // A TTL of 20 s: a read within its tenth (2 s, room for a loaded machine) is served
    // from the cache; one after it goes to Redis and slides the expiry.
    let manager = with_ttl(&server, 20).await;
    let key = unique_key("slide");
    let appended = std::time::Instant::now();
    manager
        .append(&key, vec![Message::user("x")])
        .await
        .unwrap();
    manager.stats(&key).await.unwrap(); // loads the read script into Redis
    let meta = SessionKeys::new(&key).meta;
    let counter = CallCounter::start(&server);
    manager.history(&key).await.unwrap();
    let fresh_read = appended.elapsed();
    let calls = counter.take(&server);
    if fresh_read < std::time::Duration::from_secs(2) {
        assert_eq!(calls, HashMap::new(), "fresh copy, TTL just set");
    }

    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let before: i64 = server.cli(&["PTTL", &meta]).parse().unwrap();
    manager.history(&key).await.unwrap();
    let after: i64 = server.cli(&["PTTL", &meta]).parse().unwrap();
    let calls = counter.take(&server);
    assert_eq!(
        calls.get("evalsha").copied(),
        Some(1),
        "the read refreshed the TTL: {calls:?}"
    );
    // Without a refresh the TTL only goes down.
    assert!(
        before <= 18_000 && after > before,
        "pttl {before} -> {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_applied_to_every_key_of_the_session() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let manager = with_ttl(&server, 100).await;
    let key = unique_key("ttlkeys");
    manager
        .append(&key, vec![Message::user("x")])
        .await
        .unwrap();
    let keys = SessionKeys::new(&key);
    for k in keys.all() {
        let ttl: i64 = server.cli(&["TTL", k]).parse().unwrap();
        assert!((95..=100).contains(&ttl), "{k}: ttl {ttl}");
    }
    // Nothing else was written: every key ragchat made is one of the session's (its
    // three, the user's index and usage total).
    let all = server.cli(&["KEYS", "*"]);
    let mut listed: Vec<&str> = all.lines().collect();
    listed.sort();
    let mut expected = keys.all().to_vec();
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_without_refresh_keeps_expiries_but_never_leaves_a_key_without_one() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let store = connect(&server).await;
    let opts = |refresh_ttl| ragchat_memory::store::AppendOptions {
        ttl: ragchat_memory::Ttl::secs(100),
        max_messages: 0,
        refresh_ttl,
        quotas: ragchat_memory::Quotas::UNBOUNDED,
    };
    let ttls = |key: &SessionKey| -> Vec<i64> {
        SessionKeys::new(key)
            .all()
            .iter()
            .map(|k| server.cli(&["TTL", k]).parse().unwrap())
            .collect()
    };
    // A new session gets the TTL on every key even when no refresh is asked for.
    let key = unique_key("norefresh");
    store
        .append(&key, &[Message::user("a")], opts(false))
        .await
        .unwrap();
    assert!(
        ttls(&key).iter().all(|t| (95..=100).contains(t)),
        "{:?}",
        ttls(&key)
    );

    // An existing one keeps its expiries without a refresh, and gets them back with one.
    for k in SessionKeys::new(&key).all() {
        server.cli(&["EXPIRE", k, "50"]);
    }
    let outcome = store
        .append(&key, &[Message::user("b")], opts(false))
        .await
        .unwrap();
    assert!(
        ttls(&key).iter().all(|t| (45..=50).contains(t)),
        "{:?}",
        ttls(&key)
    );
    assert!(
        (45..=50).contains(&outcome.meta.ttl_remaining_secs.unwrap()),
        "the reply reports the real TTL: {:?}",
        outcome.meta
    );
    store
        .append(&key, &[Message::user("c")], opts(true))
        .await
        .unwrap();
    assert!(
        ttls(&key).iter().all(|t| (95..=100).contains(t)),
        "{:?}",
        ttls(&key)
    );

    // A session created empty gets its log and id set on the first append: they get
    // the TTL too.
    let empty = unique_key("created");
    store
        .create(&empty, ragchat_memory::Ttl::secs(100))
        .await
        .unwrap();
    store
        .append(&empty, &[Message::user("first")], opts(false))
        .await
        .unwrap();
    assert!(
        ttls(&empty).iter().all(|t| (95..=100).contains(t)),
        "{:?}",
        ttls(&empty)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_is_a_clear_unavailable_error() {
    let port = ragchat_testkit::free_port();
    let opts = StoreOptions {
        connect_timeout: std::time::Duration::from_millis(300),
        command_timeout: std::time::Duration::from_millis(300),
        lazy: false,
        ..StoreOptions::default()
    };
    let started = std::time::Instant::now();
    let err = ragchat_memory::open_store(&format!("redis://127.0.0.1:{port}"), &opts)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let err = ragchat_memory::open_store("redis://:pw@[bad", &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ragchat_memory::MemoryError::InvalidInput(_)),
        "{err}"
    );
    assert!(!err.to_string().contains("pw@"), "password leaked: {err}");
}
