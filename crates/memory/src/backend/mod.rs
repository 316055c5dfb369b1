//! Storage backends. Each keeps the `SessionStore` contract; pick one by URL with
//! [`open_store`](crate::store::open_store).

pub mod memory;
pub mod redis;
pub mod sqlite;

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Remaining whole seconds until `expires_at_ms`, rounded up; `None` when it never expires.
pub(crate) fn remaining_secs(expires_at_ms: Option<i64>, now_ms: i64) -> Option<u64> {
    expires_at_ms.map(|at| ((at - now_ms).max(0) as u64).div_ceil(1000))
}
