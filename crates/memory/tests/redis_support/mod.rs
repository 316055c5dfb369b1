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

/// A Lua script (KEYS: list, hash) that appends a packed message (layout v2) with a role
/// code no version writes at the session's next seq, counted in its figures: a corrupt
/// entry for the conformance suite. Returns the seq.
pub(crate) const PLANT_CORRUPT: &str =
    "local s = tonumber(redis.call('HGET', KEYS[2], 'seq')) + 1 \
    local function be(n, w) local o = {} for i = w, 1, -1 do o[i] = string.char(n % 256) \
    n = math.floor(n / 256) end return table.concat(o) end \
    redis.call('RPUSH', KEYS[1], '\\2' .. string.rep('a', 16) .. be(s, 8) .. be(0, 8) \
    .. 'xc' .. be(0, 4) .. 'x') \
    redis.call('HSET', KEYS[2], 'seq', s) redis.call('HINCRBY', KEYS[2], 'count', 1) \
    return s";
