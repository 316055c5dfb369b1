//! Retention checks: `purge_idle` deletes the sessions idle the longest, a bounded
//! batch at a time, and frees what they held.
//!
//! Retention works on the whole store, not on one user: these checks first purge
//! every session idle since before they started (what earlier checks left in the
//! fixture's store), so run them on a store of their own, or after the checks whose
//! sessions they would delete (`run_all` does).

use std::sync::Arc;
use std::time::Duration;

use super::{listed, load_all, numbered, opts, unique_key, StoreFixture};
use crate::error::MemoryError;
use crate::limits::Quotas;
use crate::message::SessionKey;
use crate::store::{AppendOptions, SessionStore};

/// Milliseconds since the epoch, on the clock the stores stamp activity with.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Appends one message to `key`, then waits a little, so that the next session's
/// last activity is strictly later (activity is kept in milliseconds).
async fn touch(store: &Arc<dyn SessionStore>, key: &SessionKey, options: AppendOptions) {
    store
        .append(key, &numbered(1, key.session()), options)
        .await
        .expect("append");
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Purges every session idle since before `before_ms`, batch after batch.
async fn purge_all_before(store: &Arc<dyn SessionStore>, before_ms: i64) {
    loop {
        let batch = store.purge_idle(before_ms, 100).await.expect("purge_idle");
        if batch.len() < 100 {
            return;
        }
    }
}

/// `purge_idle` deletes only sessions idle since before its time, oldest first, at
/// most `limit` per call, each with its messages, its listing and its dedupe record;
/// newer sessions (of any user) stay whole.
pub async fn purge_idle_deletes_the_oldest_idle_sessions(f: &dyn StoreFixture) {
    if !f.purges_idle_sessions() {
        return;
    }
    let store = f.open().await;
    let name = store.describe();
    tokio::time::sleep(Duration::from_millis(5)).await;
    purge_all_before(&store, now_ms()).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let first = unique_key("idle-1");
    let user = first.user().to_string();
    let second = SessionKey::new(&user, "idle-2").unwrap();
    let other_user = unique_key("idle-3");
    let ttl = opts(3600, 0);
    touch(&store, &first, ttl).await;
    touch(&store, &second, ttl).await;
    touch(&store, &other_user, ttl).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let fresh = SessionKey::new(&user, "fresh").unwrap();
    let fresh_other = SessionKey::new(other_user.user(), "fresh").unwrap();
    touch(&store, &fresh, ttl).await;
    touch(&store, &fresh_other, ttl).await;

    let batch = store.purge_idle(cutoff, 2).await.expect("purge_idle");
    assert_eq!(
        batch,
        vec![first.clone(), second.clone()],
        "{name}: the two sessions idle the longest, oldest first"
    );
    let batch = store.purge_idle(cutoff, 2).await.expect("purge_idle");
    assert_eq!(
        batch,
        vec![other_user.clone()],
        "{name}: a short batch is the last"
    );
    assert!(
        store.purge_idle(cutoff, 2).await.unwrap().is_empty(),
        "{name}: nothing idle is left"
    );

    for gone in [&first, &second, &other_user] {
        assert!(load_all(&store, gone, 0).await.is_none(), "{name}: {gone}");
        assert!(store.meta(gone).await.unwrap().is_none(), "{name}: {gone}");
        assert!(!store.delete(gone).await.unwrap(), "{name}: {gone}");
    }
    let names = |list: Vec<crate::store::SessionSummary>| -> Vec<String> {
        list.into_iter().map(|s| s.session).collect()
    };
    assert_eq!(names(listed(&store, &user).await), ["fresh"], "{name}");
    assert_eq!(
        names(listed(&store, other_user.user()).await),
        ["fresh"],
        "{name}"
    );
    for kept in [&fresh, &fresh_other] {
        let loaded = load_all(&store, kept, 0).await.expect("a newer session");
        assert_eq!(loaded.messages.len(), 1, "{name}: {kept}");
    }
    // The dedupe record went too: the same ids are stored again, from seq 1.
    let again = store
        .append(&first, &numbered(1, first.session()), ttl)
        .await
        .unwrap();
    assert_eq!(again.seqs, vec![Some(1)], "{name}");
}

/// A purged session frees its place in the user's session count and its bytes, so a
/// user at a quota can write again.
pub async fn purge_idle_frees_the_users_quota(f: &dyn StoreFixture) {
    if !f.purges_idle_sessions() {
        return;
    }
    let store = f.open().await;
    let name = store.describe();
    let old = unique_key("old");
    let user = old.user().to_string();
    let kept = SessionKey::new(&user, "kept").unwrap();
    let next = SessionKey::new(&user, "next").unwrap();
    let one = || numbered(1, "q");
    let size = one()[0].stored_bytes();
    let quotas = |user_sessions, user_bytes| AppendOptions {
        quotas: Quotas {
            user_sessions,
            user_bytes,
            ..Quotas::UNBOUNDED
        },
        ..opts(3600, 0)
    };
    let full = quotas(2, 2 * size);
    store.append(&old, &one(), full).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.append(&kept, &one(), full).await.unwrap();
    for (key, what) in [(&kept, "bytes"), (&next, "sessions")] {
        let refused = store.append(key, &one(), full).await;
        assert!(
            matches!(refused, Err(MemoryError::Quota(_))),
            "{name}: the user is at its {what} quota: {refused:?}"
        );
    }

    purge_all_before(&store, cutoff).await;
    assert!(store.meta(&old).await.unwrap().is_none(), "{name}");
    store
        .append(&kept, &one(), quotas(0, 2 * size))
        .await
        .unwrap_or_else(|e| panic!("{name}: the purged session's bytes still count: {e}"));
    store
        .append(&next, &one(), quotas(2, 0))
        .await
        .unwrap_or_else(|e| panic!("{name}: the purged session still counts: {e}"));
    assert_eq!(listed(&store, &user).await.len(), 2, "{name}");
}
