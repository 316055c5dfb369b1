//! `/readyz` on a `redis+cluster://` store (issue 12): the store itself reports how
//! Redis persists, over its cluster connection, so a cluster URL gets the same
//! `redis_persistence` field and warning as a single Redis.

mod common;

use common::*;
use ragchat_server::routes::ops::NO_PERSISTENCE_WARNING;
use ragchat_server::{AppState, ServerConfig};
use ragchat_testkit::RedisCluster;
use serde_json::Value;

/// The detailed `/readyz` of a fresh server on `url` (a fresh probe: no cached answer).
async fn readyz(url: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let memory = manager(url).await;
    let mut config = ServerConfig::for_message_limit(memory.config().max_content_bytes);
    config.redis_url = Some(url.to_string());
    let state = AppState::new(engine(memory), keys_auth(dir.path()), config);
    let app = ragchat_server::app(state);
    get(&app, "/readyz", Some(ALICE_KEY)).await.json()
}

fn warns_of_no_persistence(ready: &Value) -> bool {
    ready["warnings"]
        .as_array()
        .is_some_and(|w| w.iter().any(|w| w == NO_PERSISTENCE_WARNING))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_redis_persistence_on_a_cluster_url() {
    let Some(cluster) = RedisCluster::start_with_or_skip(3, |b| b.appendonly(true)) else {
        return;
    };
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://"), "{url}");

    let ready = readyz(&url).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["redis_persistence"], "aof", "{ready}");
    assert!(!warns_of_no_persistence(&ready), "{ready}");

    // Every node keeps nothing on disk: the cluster says so, and /readyz warns.
    for node in cluster.nodes() {
        node.cli(&["CONFIG", "SET", "appendonly", "no"]);
        node.cli(&["CONFIG", "SET", "save", ""]);
    }
    let ready = readyz(&url).await;
    assert_eq!(ready["redis_persistence"], "none", "{ready}");
    assert!(warns_of_no_persistence(&ready), "{ready}");
}
