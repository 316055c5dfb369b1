//! The conformance suite on a real three-master Redis Cluster started by the harness:
//! every key of a session (and the user's index) shares one slot, so the scripts never
//! hit CROSSSLOT; plus a master restarted under load with the journal taking over, alone
//! and beside a v1 server writing the same conversation (a rolling deploy).
#![cfg(all(feature = "redis", feature = "sqlite"))]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::backend::redis::v1;
use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::journal::JournalConfig;
use ragchat_memory::testing::{self, unique_key, StoreFixture};
use ragchat_memory::{
    ManagerConfig, Message, SessionKey, SessionManager, SessionStore, StoreOptions,
};
use ragchat_testkit::RedisCluster;

mod redis_support;
use redis_support::PLANT_CORRUPT;

struct Fixture {
    cluster: RedisCluster,
}

#[async_trait]
impl StoreFixture for Fixture {
    async fn open(&self) -> Arc<dyn SessionStore> {
        Arc::new(
            RedisStore::connect(&self.cluster.url(), &StoreOptions::default())
                .await
                .expect("connect to the harness cluster"),
        )
    }

    async fn plant_corrupt(&self, key: &SessionKey) -> bool {
        let keys = SessionKeys::new(key);
        let node = &self.cluster.nodes()[self.cluster.node_for_key(&keys.hash)];
        let reply = node.cli(&["EVAL", PLANT_CORRUPT, "2", &keys.list, &keys.hash]);
        assert!(reply.parse::<u64>().is_ok(), "planting failed: {reply}");
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_a_cluster() {
    let Some(cluster) = RedisCluster::start_or_skip() else {
        return;
    };
    testing::run_all(&Fixture { cluster }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_the_masters() {
    let Some(cluster) = RedisCluster::start_or_skip() else {
        return;
    };
    let store: Arc<dyn SessionStore> = Arc::new(
        RedisStore::connect(&cluster.url(), &StoreOptions::default())
            .await
            .unwrap(),
    );
    let manager = SessionManager::new(store, ManagerConfig::default());
    for u in 0..30 {
        let key = SessionKey::new(format!("user{u}"), "s").unwrap();
        manager
            .append(&key, vec![Message::user("hi")])
            .await
            .unwrap();
    }
    let per_node: Vec<u64> = cluster
        .nodes()
        .iter()
        .map(|n| n.cli(&["DBSIZE"]).parse().unwrap())
        .collect();
    assert_eq!(
        per_node.iter().sum::<u64>(),
        30 * 4,
        "four keys per user with one session (list, hash, index, usage): {per_node:?}"
    );
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "users should spread: {per_node:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_under_load_loses_nothing_acknowledged() {
    master_restart_under_load(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_beside_a_v1_server_loses_and_doubles_nothing() {
    master_restart_under_load(true).await;
}

/// A server of the last v1 release appending to `key` on `node` (the master that holds
/// its slot) until `stop`, carrying on after errors as a server does with its next
/// request: the messages it sent, each with whether Redis acknowledged it.
async fn v1_writer(
    node: String,
    key: SessionKey,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(Message, bool)> {
    let mut sent = Vec::new();
    let mut i = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let m = Message::user(format!("v1 server msg {i}"));
        let ok = v1::append(&node, &key, std::slice::from_ref(&m), 3600, 0)
            .await
            .is_ok();
        sent.push((m, ok));
        i += 1;
        tokio::time::sleep(Duration::from_millis(if ok { 10 } else { 50 })).await;
    }
    sent
}

/// Restarts the master holding a conversation while a journaled ragchat appends to it
/// (and, with `beside_v1`, a v1 server too, straight to that master), then checks that
/// every message either acknowledged is stored once, each writer's in its order.
async fn master_restart_under_load(beside_v1: bool) {
    let Some(mut cluster) =
        RedisCluster::start_with_or_skip(3, |b| b.appendonly(true).appendfsync("always"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ragchat_memory::open_store(
        &cluster.url(),
        &StoreOptions {
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
            lazy: true,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    let manager = Arc::new(
        SessionManager::with_journal(
            store,
            ManagerConfig {
                journal: Some(JournalConfig {
                    path: dir.path().join("journal.db"),
                    max_bytes: 1 << 30,
                }),
                store_timeout: Duration::from_millis(500),
                replay_interval: Duration::from_millis(100),
                ..ManagerConfig::default()
            },
        )
        .unwrap(),
    );
    let key = unique_key("cluster-restart");
    let victim = cluster.node_for_key(&SessionKeys::new(&key).hash);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let old = beside_v1.then(|| {
        tokio::spawn(v1_writer(
            cluster.nodes()[victim].url(),
            key.clone(),
            stop.clone(),
        ))
    });
    let writer = {
        let manager = manager.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..150 {
                let m = Message::user(format!("task 0 msg {i}"));
                manager
                    .append(&key, vec![m.clone()])
                    .await
                    .expect("acknowledged or journaled");
                acknowledged.push(m);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| {
        cluster.node_mut(victim).stop();
        std::thread::sleep(Duration::from_millis(500));
        cluster.node_mut(victim).start_again();
        cluster.wait_ok(Duration::from_secs(20));
    });
    let acknowledged = writer.await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent_v1 = match old {
        Some(old) => old.await.unwrap(),
        None => Vec::new(),
    };
    testing::wait_drained(&manager, Duration::from_secs(20)).await;
    let fresh = SessionManager::new(
        Arc::new(
            RedisStore::connect(&cluster.url(), &StoreOptions::default())
                .await
                .unwrap(),
        ),
        ManagerConfig::default(),
    );
    let (own, by_v1): (Vec<Message>, Vec<Message>) = fresh
        .history(&key)
        .await
        .unwrap()
        .iter()
        .cloned()
        .partition(|m| m.content.starts_with("task 0 "));
    assert_eq!(
        own, acknowledged,
        "every acknowledged message, once, in order"
    );
    // The v1 server's: what it stored is what it sent, in order, less some of the sends
    // that failed (those may or may not have reached Redis), never one twice.
    let mut stored = by_v1.iter().map(|m| m.id).peekable();
    for (m, ok) in &sent_v1 {
        if stored.peek() == Some(&m.id) {
            stored.next();
        } else {
            assert!(
                !ok,
                "the v1 server's acknowledged {:?} is missing",
                m.content
            );
        }
    }
    assert!(
        stored.next().is_none(),
        "the v1 server's messages are stored out of order or twice"
    );
    if beside_v1 {
        let ok = sent_v1.iter().filter(|(_, ok)| *ok).count();
        eprintln!(
            "beside a v1 server: {} by ragchat, {ok} of {} acknowledged by the v1 server",
            acknowledged.len(),
            sent_v1.len()
        );
        assert!(
            ok >= 20 && ok < sent_v1.len(),
            "the v1 server should have written before and after the restart, and failed \
             during it: {ok} of {}",
            sent_v1.len()
        );
    }
}
