//! What the Redis test files share: a store and a manager on a harness server.
#![allow(dead_code)] // each test file uses its own share of these

use std::sync::Arc;

use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::{ManagerConfig, SessionManager, StoreOptions};
use ragchat_testkit::RedisServer;

pub(crate) async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.url(), &StoreOptions::default())
        .await
        .expect("connect to the harness redis")
}

/// A manager on `server` whose sessions expire after `secs` idle seconds.
pub(crate) async fn with_ttl(server: &RedisServer, secs: u64) -> SessionManager {
    let config = ManagerConfig {
        ttl: ragchat_memory::Ttl::secs(secs),
        ..ManagerConfig::default()
    };
    SessionManager::new(Arc::new(connect(server).await), config)
}
