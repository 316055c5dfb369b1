//! A Redis that may evict ragchat's keys is called out (issue 11, defect 8): `/readyz`
//! warns when `maxmemory-policy` lets Redis evict keys, and says nothing of the kind
//! for `noeviction`.

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
    let ready = get(&app, "/readyz", None).await.json();
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
