//! What `/readyz` warns about (issue 11): a Redis whose `maxmemory-policy` lets it
//! evict ragchat's keys (defect 8; nothing of the kind for `noeviction`), and messages
//! the local journal keeps for another store (defect 3).

mod common;

use common::*;
use ragchat_server::{AppState, ServerConfig};
use ragchat_testkit::RedisServer;

async fn readyz_warnings(redis: &RedisServer) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let memory = manager(&redis.url()).await;
    let limit = memory.config().max_content_bytes;
    let mut config = ServerConfig::for_message_limit(limit);
    config.redis_url = Some(redis.url());
    let state = AppState::new(engine(memory), keys_auth(dir.path()), config);
    let app = ragchat_server::app(state);
    let ready = get(&app, "/readyz", Some(ALICE_KEY)).await.json();
    ready["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings array: {ready}"))
        .iter()
        .map(|w| w.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_warns_when_redis_may_evict_conversations() {
    let Some(lru) = RedisServer::builder()
        .arg("maxmemory", "3mb")
        .arg("maxmemory-policy", "allkeys-lru")
        .start_or_skip()
    else {
        return;
    };
    let warnings = readyz_warnings(&lru).await;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("maxmemory-policy") && w.contains("allkeys-lru")),
        "{warnings:?}"
    );

    let Some(safe) = RedisServer::builder()
        .arg("maxmemory", "3mb")
        .arg("maxmemory-policy", "noeviction")
        .start_or_skip()
    else {
        return;
    };
    let warnings = readyz_warnings(&safe).await;
    assert!(
        !warnings.iter().any(|w| w.contains("maxmemory-policy")),
        "{warnings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_journal_entries_kept_for_another_store() {
    let Some(redis) = RedisServer::builder().start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    // An earlier server of this data dir journaled a message for another Redis.
    let other = ragchat_memory::journal::Journal::open(
        ragchat_memory::JournalConfig {
            path: journal.clone(),
            max_bytes: 1 << 20,
        },
        "redis://elsewhere.example:6379/0",
    )
    .unwrap();
    let key = ragchat_memory::SessionKey::new("alice", "s").unwrap();
    other
        .append(&key, &[ragchat_memory::Message::user("for elsewhere")])
        .await
        .unwrap();
    drop(other);

    let store = ragchat_memory::open_store(&redis.url(), &Default::default())
        .await
        .unwrap();
    let memory = ragchat_memory::SessionManager::with_journal(
        store,
        ragchat_memory::ManagerConfig {
            journal: Some(ragchat_memory::JournalConfig {
                path: journal,
                max_bytes: 1 << 20,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let state = state(engine(memory.clone()), keys_auth(dir.path()));
    let app = ragchat_server::app(state);
    let ready = get(&app, "/readyz", Some(ALICE_KEY)).await.json();
    let warnings = ready["warnings"].to_string();
    assert!(
        warnings.contains("another store") && warnings.contains("elsewhere.example:6379/0"),
        "{ready}"
    );
    assert_eq!(ready["pending_sync"], 0, "not this store's: {ready}");
    // And it was not replayed into this Redis.
    memory.replay_journal().await.unwrap();
    assert!(redis.cli(&["KEYS", "ragchat:*"]).trim().is_empty());
}
