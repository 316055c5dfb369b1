//! The conformance suite on a real `redis-server` started by the harness, plus the
//! Redis specifics: persistence across a restart, many writers on two managers, expiry of
//! every key, and corrupt entries planted with redis-cli (caching: redis_caching.rs).
#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;

use async_trait::async_trait;
use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::testing::{self, assert_writer_order, unique_key, StoreFixture};
use ragchat_memory::{
    ManagerConfig, Message, SessionKey, SessionManager, SessionStore, StoreOptions,
};
use ragchat_testkit::{redis_or_skip, RedisServer};
use redis_support::{connect, with_ttl};

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
        let reply = self.server.cli(&[
            "EVAL",
            redis_support::PLANT_CORRUPT,
            "2",
            &keys.list,
            &keys.hash,
        ]);
        assert!(reply.parse::<u64>().is_ok(), "planting failed: {reply}");
        true
    }
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
    for k in keys.v2() {
        let ttl: i64 = server.cli(&["TTL", k]).parse().unwrap();
        assert!((95..=100).contains(&ttl), "{k}: ttl {ttl}");
    }
    // Nothing else was written: every key ragchat made is one of the session's (its
    // three, the user's index and usage total).
    let all = server.cli(&["KEYS", "*"]);
    let mut listed: Vec<&str> = all.lines().collect();
    listed.sort();
    let mut expected = keys.v2().to_vec();
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
            .v2()
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
    for k in SessionKeys::new(&key).v2() {
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
