//! Client-side caching over a connection that stops delivering (issue 11): while a
//! process only reads from its cache, nothing would tell it that its connection went
//! silent, and it would serve a stale copy for as long as the silence lasts. A
//! heartbeat on the idle connection ends its generation when unanswered, so a stale
//! copy is served for at most about the heartbeat plus the store timeout.
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{ManagerConfig, Message, SessionManager, StoreOptions};
use ragchat_testkit::{redis_or_skip, TcpProxy};

const TIMEOUT: Duration = Duration::from_millis(250);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_stops_vouching_for_cached_copies() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    // A's heartbeat is bounded by its command timeout; B and A's reconnection get room
    // for a loaded machine.
    let options = StoreOptions {
        connect_timeout: Duration::from_secs(5),
        command_timeout: TIMEOUT,
        ..StoreOptions::default()
    };
    let store_a = RedisStore::connect(&proxy.redis_url(), &options)
        .await
        .unwrap();
    let a = SessionManager::new(Arc::new(store_a), ManagerConfig::default());
    let b = SessionManager::new(
        Arc::new(
            RedisStore::connect(&server.url(), &StoreOptions::default())
                .await
                .unwrap(),
        ),
        ManagerConfig::default(),
    );
    let key = unique_key("silent");
    a.append(&key, vec![Message::user("one")]).await.unwrap();
    assert_eq!(a.history(&key).await.unwrap().len(), 1);
    assert_eq!(
        a.status().await.unwrap().reads.from_cache,
        1,
        "A serves from cache"
    );

    // A's connection stops delivering (no FIN); B writes; A only reads.
    proxy.stall_open();
    b.append(&key, vec![Message::assistant("two")])
        .await
        .unwrap();
    let stalled = Instant::now();
    // Heartbeat (1 s) + timeout, with slack for a loaded machine; without a heartbeat
    // the stale copy is served for as long as the silence lasts.
    let bound = (Duration::from_secs(1) + TIMEOUT) * 8;
    let mut stale_for = Duration::ZERO;
    loop {
        // A read that times out (a loaded machine) is not a stale read: ask again.
        if let Ok(history) = a.history(&key).await {
            if history.len() == 2 {
                break;
            }
        }
        stale_for = stalled.elapsed();
        assert!(
            stale_for < bound,
            "A served its stale copy for {stale_for:?} after its connection went silent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("stale copy served for {stale_for:?} after the connection went silent");
    proxy.restore();
}
