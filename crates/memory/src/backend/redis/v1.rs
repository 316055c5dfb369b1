//! The v1 layout's scripts, as the last v1 release ran them, kept to produce v1 data in
//! tests: what an old server leaves in Redis, and what it writes during a rolling
//! deploy next to v2 servers. Nothing in ragchat itself writes v1 any more.

use redis::{Script, Value};

use super::decode::value_i64;
use super::keys::SessionKeys;
use crate::backend::shared::now_ms;
use crate::error::{MemoryError, Result};
use crate::message::{Message, SessionKey};
use crate::title::title_of;

/// A connection of its own for a fixture's server (a single node at `url`).
///
/// # Errors
/// `Unavailable` when Redis cannot be reached.
pub(super) async fn fixture_connection(url: &str) -> Result<redis::aio::MultiplexedConnection> {
    let unavailable = |e: redis::RedisError| MemoryError::Unavailable {
        store: url.to_string(),
        reason: e.to_string(),
    };
    let client = redis::Client::open(url).map_err(unavailable)?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(unavailable)
}

/// A v1 server's append, on the Redis at `url` (a single node): the messages' seqs, 0
/// for each one it already had.
///
/// # Errors
/// `Unavailable` when Redis cannot be reached; the script's own errors as `Corrupt`.
pub async fn append(
    url: &str,
    key: &SessionKey,
    messages: &[Message],
    ttl_secs: u64,
    max_messages: u64,
) -> Result<Vec<u64>> {
    let mut conn = fixture_connection(url).await?;
    let script = Script::new(concat!(
        include_str!("v1/repair.lua"),
        include_str!("v1/append.lua")
    ));
    let keys = SessionKeys::new(key);
    let mut inv = script.prepare_invoke();
    for k in [
        &keys.v1_log,
        &keys.v1_meta,
        &keys.v1_ids,
        &keys.index,
        &keys.usage,
    ] {
        inv.key(k);
    }
    inv.arg(now_ms())
        .arg(ttl_secs)
        .arg(max_messages)
        .arg(key.session())
        .arg(messages.len())
        .arg(1)
        .arg(0)
        .arg(0)
        .arg(0)
        .arg(title_of(messages).unwrap_or_default())
        .arg(0);
    for m in messages {
        inv.arg(m.id.to_string())
            .arg(m.role.as_str())
            .arg(m.content.as_str())
            .arg(m.sources_json())
            .arg(m.created_at_millis())
            .arg(m.status.as_str());
    }
    fixture_seqs(&inv, &mut conn, "v1").await
}

/// Runs a fixture's append script and reads the messages' seqs from its reply (after
/// the nine figures; 0 for a message it already had).
///
/// # Errors
/// The script's errors, and a reply of another shape, as `Corrupt`.
pub(super) async fn fixture_seqs(
    inv: &redis::ScriptInvocation<'_>,
    conn: &mut redis::aio::MultiplexedConnection,
    layout: &str,
) -> Result<Vec<u64>> {
    let reply: Value = inv
        .invoke_async(conn)
        .await
        .map_err(|e| MemoryError::Corrupt(format!("the {layout} append script failed: {e}")))?;
    let Value::Array(items) = reply else {
        return Err(MemoryError::Corrupt(format!(
            "{layout} append returned {reply:?}"
        )));
    };
    Ok(items
        .iter()
        .skip(9)
        .map(|v| value_i64(v).unwrap_or(0).max(0) as u64)
        .collect())
}
