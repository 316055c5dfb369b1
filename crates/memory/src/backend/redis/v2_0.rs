//! The first v2 release's append (`v2_0/`: its `common.lua` and `append.lua` as they
//! were, with 256 dedupe buckets that never split), kept to test a rolling deploy from it:
//! what an old server writes next to a server of this version.

use redis::Script;

use super::keys::SessionKeys;
use super::pack;
use crate::backend::shared::now_ms;
use crate::error::Result;
use crate::message::{Message, SessionKey};
use crate::title::title_of;

/// A first-release v2 server's append, on the Redis at `url` (a single node), with no TTL
/// refresh and no quotas: the messages' seqs, 0 for each one it already had.
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
    let mut conn = super::v1::fixture_connection(url).await?;
    let script = Script::new(concat!(
        include_str!("v2_0/common.lua"),
        include_str!("v2_0/append.lua")
    ));
    let keys = SessionKeys::new(key);
    let mut inv = script.prepare_invoke();
    for k in keys.all() {
        inv.key(k);
    }
    inv.arg(now_ms())
        .arg(ttl_secs)
        .arg(max_messages)
        .arg(key.session())
        .arg(messages.len())
        .arg(0)
        .arg(0)
        .arg(0)
        .arg(0)
        .arg(title_of(messages).unwrap_or_default())
        .arg(0)
        .arg(0);
    for m in messages {
        inv.arg(pack::pack(m, 0));
    }
    super::v1::fixture_seqs(&inv, &mut conn, "v2.0").await
}
