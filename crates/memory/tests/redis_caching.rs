//! Client-side caching on a real `redis-server`: an append is one call, a current cached
//! read none; another server's write, a lost connection or a flush reach a cached copy; a
//! cached read still refreshes the TTL.
#![cfg(feature = "redis")]

mod redis_support;

use std::collections::HashMap;
use std::sync::Arc;

use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{ManagerConfig, Message, SessionKey, SessionManager};
use ragchat_testkit::{redis_or_skip, RedisServer};
use redis_support::{connect, with_ttl};

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
    // Warm up: load the scripts (the full append creates the session, the lean one
    // takes the next turn) and the cache.
    for _ in 0..2 {
        manager
            .append(&key, vec![Message::user("warm"), Message::assistant("up")])
            .await
            .unwrap();
    }
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
        assert_eq!(h.len(), 6);
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
        assert_eq!(manager.history(&key).await.unwrap().len(), 206);
    })
    .await;
    assert_eq!(calls, HashMap::new(), "a cached read of a long session");
    let reads = manager.status().await.unwrap().reads;
    // The warm-up read too: the append had just made the copy current.
    assert_eq!((reads.from_cache, reads.from_store), (3, 0), "{reads:?}");

    // A confirmed read (what people look at) asks Redis all the same.
    manager.history_confirmed(&key).await.unwrap(); // loads the read script
    let calls = count_calls(&counter, &server, || async {
        assert_eq!(manager.history_confirmed(&key).await.unwrap().len(), 206);
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
    let meta = SessionKeys::new(&key).hash;
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
