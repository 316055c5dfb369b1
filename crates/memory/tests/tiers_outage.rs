//! The archive down under load (issue 13): every turn still succeeds, Redis expires
//! nothing the archive has not confirmed however long the outage lasts past the TTL,
//! and once the archive is back it holds every message once and the lag returns to 0.
//! Also: reading an archived conversation (paging below what a rehydration put back
//! into Redis, stats without rehydrating, export).
#![cfg(all(feature = "redis", feature = "sqlite", feature = "postgres"))]

mod tiers_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{
    ArchiveState, ManagerConfig, ReadFrom, ReadLimit, SessionKey, SessionManager, SessionStore, Ttl,
};
use ragchat_testkit::redis_or_skip;
use tiers_support::{archived_ids, config, eventually, opts, tiered, turn, Archive};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_30_s_under_load_loses_and_expires_nothing() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let Some(mut archive) = Archive::postgres("outage") else {
        return;
    };
    const TTL: u64 = 5;
    let store = tiered(&redis, &archive, config(TTL)).await;
    let keys: Vec<SessionKey> = (0..6).map(|i| unique_key(&format!("out{i}"))).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for key in keys.clone() {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut turns = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append(&key, &turn(turns), opts(TTL))
                    .await
                    .unwrap_or_else(|e| panic!("turn {turns} of {key} failed: {e}"));
                turns += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            turns
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    archive.postgres_server().stop();
    eventually(
        Duration::from_secs(20),
        "the archive shows as down",
        async || store.archive_status().unwrap().state == ArchiveState::Down,
    )
    .await;
    // A conversation that starts during the outage starts in Redis (the archive
    // cannot say whether it had one), without the manager going degraded.
    let manager = SessionManager::new(store.clone(), ManagerConfig::default());
    let newcomer = unique_key("newcomer");
    assert!(manager.history(&newcomer).await.unwrap().is_empty());
    manager.append(&newcomer, turn(0)).await.unwrap();
    assert_eq!(manager.history(&newcomer).await.unwrap().len(), 2);
    assert_eq!(manager.mode(), ragchat_memory::Mode::Normal);
    // The outage lasts 30 s, six times the TTL: nothing may expire meanwhile.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for key in &keys {
            let keys = SessionKeys::new(key);
            assert_eq!(
                redis.cli(&["PTTL", &keys.list]),
                "-1",
                "{key} keeps no TTL while unarchived"
            );
        }
        let status = store.archive_status().unwrap();
        assert!(
            status.lag_seconds > 0.0 && status.lag_messages > 0,
            "{status:?}"
        );
    }
    archive.postgres_server().start_again();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut turns = Vec::new();
    for w in writers {
        turns.push(w.await.expect("writer"));
    }
    assert_eq!(store.flush(Duration::from_secs(60)).await, 0, "caught up");
    let status = store.archive_status().unwrap();
    assert_eq!(status.state, ArchiveState::Ok, "{status:?}");
    assert_eq!((status.lag_messages, status.lag_seconds), (0, 0.0));
    let direct = archive.open().await;
    for (key, n) in keys.iter().zip(turns) {
        assert!(n > 10, "{key}: the load ran ({n} turns)");
        let ids = archived_ids(direct.as_ref(), key).await;
        assert_eq!(
            ids.len(),
            2 * n,
            "{key}: every acknowledged message archived"
        );
        assert!(ids.values().all(|c| *c == 1), "{key}: once each");
    }
    // Archived now: the TTL applies again.
    assert_eq!(archived_ids(direct.as_ref(), &newcomer).await.len(), 2);
    let first = SessionKeys::new(&keys[0]);
    let pttl: i64 = redis.cli(&["PTTL", &first.list]).parse().unwrap();
    assert!(pttl > 0 && pttl <= (TTL * 1000) as i64, "{pttl}");
}

/// An archived conversation is read like any other: stats without bringing it back,
/// pages below what a rehydration restored come from the archive, export holds all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_conversations_read_like_hot_ones() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let archive = Archive::sqlite();
    let mut cfg = config(3600);
    cfg.restore_limit = ReadLimit::new(10, 1 << 20);
    let store = tiered(&redis, &archive, cfg).await;
    let key = unique_key("deep");
    for i in 0..15 {
        store.append(&key, &turn(i), opts(3600)).await.unwrap();
    }
    assert_eq!(store.flush(Duration::from_secs(10)).await, 0);
    redis.cli(&["FLUSHALL"]);

    let manager = SessionManager::new(store.clone(), ManagerConfig::default());
    let stats = manager
        .stats(&key)
        .await
        .unwrap()
        .expect("stats of an archived conversation");
    assert_eq!(stats.message_count, 30);
    assert!(
        tiers_support::redis_keys(&redis, key.user()).is_empty(),
        "looking does not bring it back"
    );

    // Reading brings back the newest 10; paging from the start reads the rest from
    // the archive, in order, each once.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .load(
                &key,
                ReadFrom::After(after),
                ReadLimit::new(7, 1 << 20),
                Ttl::secs(3600),
            )
            .await
            .unwrap()
            .expect("exists");
        for (seq, m) in &page.messages {
            seen.push((*seq, m.content.clone()));
            after = *seq;
        }
        if !page.more {
            break;
        }
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>(), "{seen:?}");
    let list = SessionKeys::new(&key).list;
    assert_eq!(
        redis.cli(&["LLEN", &list]),
        "10",
        "only the newest went back to Redis"
    );

    let export = manager.export(key.user()).await.unwrap();
    let json = serde_json::to_string(&export).unwrap();
    assert!(
        json.contains("question 0") && json.contains("answer 14"),
        "{json}"
    );
}
