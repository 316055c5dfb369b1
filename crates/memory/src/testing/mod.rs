//! The backend conformance suite: the `SessionStore` contract, written once and run
//! against every backend (each backend's test file supplies a [`StoreFixture`]).
//!
//! Enabled with the `test-utils` feature. Every check panics with a message that
//! names the backend and what went wrong.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::limits::{Quotas, ReadFrom, ReadLimit};
use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, MessageId, MessageStatus, Role, SessionKey, SourceRef};
use crate::store::{AppendOptions, SessionStore, SessionSummary, Ttl};

mod bounds;
pub mod eval_set;
mod managers;
mod retention;
mod search;
mod titles;
mod users;

pub use self::bounds::*;
pub use self::managers::*;
pub use self::retention::*;
pub use self::search::*;
pub use self::titles::*;
pub use self::users::*;

/// Supplies handles on the backend under test.
#[async_trait]
pub trait StoreFixture: Send + Sync {
    /// A new handle (new connection) on the same data.
    async fn open(&self) -> Arc<dyn SessionStore>;

    /// Writes an undecodable entry into the session, directly in the backend, after
    /// the session's existing messages. Returns `false` when the backend cannot hold
    /// corrupt data (RAM).
    async fn plant_corrupt(&self, key: &SessionKey) -> bool;

    /// Whether the backend expires idle sessions after their TTL. A durable store that
    /// keeps every conversation until it is deleted (SQLite, PostgreSQL) says `false`:
    /// the checks then expect no expiry at all (`ttl_remaining_secs` always `None`, an
    /// idle session still there after its TTL).
    fn expires_idle_sessions(&self) -> bool {
        true
    }

    /// Whether the backend implements retention (`purge_idle`); the retention checks
    /// run only then. They purge every session idle since before they started, in the
    /// whole store the fixture opens.
    fn purges_idle_sessions(&self) -> bool {
        false
    }

    /// Whether the backend searches (`search`); the search checks run only then, and
    /// otherwise check that it refuses with `Unsupported`.
    fn searches(&self) -> bool {
        false
    }
}

/// Waits until the manager is back in normal mode with an empty journal.
///
/// # Panics
/// When that does not happen within `within`, with the last status.
pub async fn wait_drained(manager: &SessionManager, within: Duration) {
    let deadline = std::time::Instant::now() + within;
    loop {
        let status = manager.status().await.expect("status");
        if status.pending_sync == 0 && status.mode == crate::Mode::Normal {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "journal not drained in {within:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A key unique to one test, so that tests can share a store.
pub fn unique_key(test: &str) -> SessionKey {
    let suffix = MessageId::new().to_string();
    SessionKey::new(format!("u-{}", &suffix[24..]), test).expect("valid test key")
}

fn opts(ttl: u64, max: u64) -> AppendOptions {
    AppendOptions {
        ttl: Ttl::secs(ttl),
        max_messages: max,
        refresh_ttl: true,
        quotas: Quotas::UNBOUNDED,
    }
}

/// A read bound that holds everything the checks write.
const ALL: ReadLimit = ReadLimit::new(usize::MAX, u64::MAX);

/// Every entry after `after`, in one read.
async fn load_all(
    store: &Arc<dyn SessionStore>,
    key: &SessionKey,
    after: u64,
) -> Option<crate::store::LoadedSession> {
    store
        .load(key, ReadFrom::After(after), ALL, Ttl::secs(3600))
        .await
        .expect("load")
}

/// The first page of a user's sessions (the checks write few).
async fn listed(store: &Arc<dyn SessionStore>, user: &str) -> Vec<SessionSummary> {
    store.list(user, None, 1000).await.expect("list").sessions
}

fn numbered(n: usize, prefix: &str) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            Message::new(role, format!("{prefix} {i}"))
        })
        .collect()
}

/// Runs every check of the suite, one after another.
pub async fn run_all(f: &dyn StoreFixture) {
    append_and_load_round_trip(f).await;
    replaying_the_same_ids_stores_nothing(f).await;
    load_after_returns_only_newer_entries(f).await;
    max_messages_trims_the_oldest(f).await;
    list_is_per_user_and_newest_first(f).await;
    delete_removes_everything(f).await;
    create_is_idempotent(f).await;
    ttl_zero_never_expires(f).await;
    corrupt_entries_are_skipped(f).await;
    concurrent_appends_keep_every_message_once(f).await;
    a_second_manager_sees_the_whole_history(f).await;
    managers_stay_coherent(f).await;
    manager_rejects_bad_input_and_writes_nothing(f).await;
    context_window_fits_the_budget(f).await;
    export_holds_every_session(f).await;
    sliding_ttl(f).await;
    reads_are_bounded_in_messages_and_bytes(f).await;
    list_pages_walk_every_session_once(f).await;
    quotas_refuse_and_write_nothing(f).await;
    the_identity_is_stable_and_names_no_secret(f).await;
    history_is_a_bounded_tail_and_pages_read_all_of_it(f).await;
    quota_refusals_reach_the_manager_as_quota(f).await;
    the_first_question_titles_the_session(f).await;
    a_given_title_replaces_the_first_question_until_cleared(f).await;
    the_manager_renames_and_validates(f).await;
    users_pages_list_every_user_once_ascending(f).await;
    search_checks(f).await;
    // Last: retention deletes what the checks above left idle.
    purge_idle_deletes_the_oldest_idle_sessions(f).await;
    purge_idle_frees_the_users_quota(f).await;
}

/// Messages come back exactly as written, in order, with consecutive seqs.
pub async fn append_and_load_round_trip(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("roundtrip");
    let mut msgs = numbered(3, "hello");
    msgs[1] = Message::assistant("an answer with sources, ünïcödé and \"quotes\"\nand lines")
        .with_sources(vec![SourceRef {
            path: "docs/ml.md".into(),
            heading: Some("What is ML".into()),
            score: 3.25,
            line_start: Some(1),
            line_end: Some(12),
            conversation: None,
        }])
        .with_status(MessageStatus::Incomplete);
    msgs[2] = Message::new(Role::System, "system note");
    let out = store
        .append(&key, &msgs, opts(3600, 0))
        .await
        .expect("append");
    assert_eq!(out.seqs, vec![Some(1), Some(2), Some(3)], "{name}: seqs");
    assert_eq!(out.meta.message_count, 3, "{name}");
    let bytes: u64 = msgs.iter().map(Message::stored_bytes).sum();
    assert_eq!(out.meta.bytes, bytes, "{name}: bytes");
    assert_eq!(out.meta.last_seq, 3, "{name}");
    if f.expires_idle_sessions() {
        let ttl = out.meta.ttl_remaining_secs.expect("ttl set");
        assert!((3590..=3600).contains(&ttl), "{name}: ttl {ttl}");
    } else {
        assert_eq!(out.meta.ttl_remaining_secs, None, "{name}: a durable store");
    }

    let loaded = load_all(&store, &key, 0).await.expect("exists");
    let got: Vec<Message> = loaded.messages.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(got, msgs, "{name}: messages differ after a round trip");
    assert_eq!(
        loaded.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{name}"
    );
    assert!(loaded.corrupt.is_empty(), "{name}");
    assert!(
        load_all(&store, &unique_key("missing"), 0).await.is_none(),
        "{name}: a missing session must load as None"
    );
}

/// Appending the same message ids again stores nothing and changes no counter.
pub async fn replaying_the_same_ids_stores_nothing(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("replay");
    let msgs = numbered(4, "m");
    store
        .append(&key, &msgs, opts(3600, 0))
        .await
        .expect("append");
    let again = store
        .append(&key, &msgs, opts(3600, 0))
        .await
        .expect("replay");
    assert_eq!(again.stored(), 0, "{name}: replay stored something");
    assert_eq!(again.seqs, vec![None; 4], "{name}");
    assert_eq!(again.meta.message_count, 4, "{name}");
    assert_eq!(again.meta.last_seq, 4, "{name}");
    // A batch mixing old and new ids stores only the new ones.
    let mut mixed = msgs[2..].to_vec();
    mixed.push(Message::user("new one"));
    let out = store
        .append(&key, &mixed, opts(3600, 0))
        .await
        .expect("mixed");
    assert_eq!(out.seqs, vec![None, None, Some(5)], "{name}");
    let loaded = load_all(&store, &key, 0).await.unwrap();
    assert_eq!(loaded.messages.len(), 5, "{name}");
}

/// `load(after)` returns only entries after `after`.
pub async fn load_after_returns_only_newer_entries(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("after");
    let msgs = numbered(5, "x");
    store.append(&key, &msgs, opts(3600, 0)).await.unwrap();
    let loaded = load_all(&store, &key, 3).await.unwrap();
    let seqs: Vec<u64> = loaded.messages.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![4, 5], "{name}");
    assert_eq!(loaded.messages[0].1, msgs[3], "{name}");
    let none = load_all(&store, &key, 5).await.unwrap();
    assert!(none.messages.is_empty(), "{name}");
    assert_eq!(none.meta.message_count, 5, "{name}");
}

/// Beyond `max_messages` the oldest entries go, in the same append, with their bytes.
pub async fn max_messages_trims_the_oldest(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("trim");
    let msgs = numbered(7, "t");
    store.append(&key, &msgs[..4], opts(3600, 5)).await.unwrap();
    let out = store.append(&key, &msgs[4..], opts(3600, 5)).await.unwrap();
    assert_eq!(out.meta.message_count, 5, "{name}");
    assert_eq!(out.meta.trimmed_seq, 2, "{name}");
    let kept: u64 = msgs[2..].iter().map(Message::stored_bytes).sum();
    assert_eq!(out.meta.bytes, kept, "{name}: bytes after trim");
    let loaded = load_all(&store, &key, 0).await.unwrap();
    let got: Vec<Message> = loaded.messages.into_iter().map(|(_, m)| m).collect();
    assert_eq!(got, msgs[2..].to_vec(), "{name}");
}

/// A user's sessions, newest activity first; other users' never appear.
pub async fn list_is_per_user_and_newest_first(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let a = unique_key("first");
    let user = a.user().to_string();
    let b = SessionKey::new(&user, "second").unwrap();
    let other = unique_key("first");
    store
        .append(&a, &numbered(2, "a"), opts(3600, 0))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .append(&b, &numbered(1, "b"), opts(3600, 0))
        .await
        .unwrap();
    store
        .append(&other, &numbered(1, "o"), opts(3600, 0))
        .await
        .unwrap();
    let list = listed(&store, &user).await;
    let names: Vec<&str> = list.iter().map(|s| s.session.as_str()).collect();
    assert_eq!(names, vec!["second", "first"], "{name}");
    assert_eq!(list[1].message_count, 2, "{name}");
    assert_eq!(
        list[0].ttl_remaining_secs.is_some(),
        f.expires_idle_sessions(),
        "{name}"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .append(&a, &numbered(1, "a2"), opts(3600, 0))
        .await
        .unwrap();
    let list = listed(&store, &user).await;
    assert_eq!(list[0].session, "first", "{name}: newest activity first");
    assert!(listed(&store, "nobody-here").await.is_empty(), "{name}");
}

/// Delete removes the session, its listing and its dedupe record.
pub async fn delete_removes_everything(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("delete");
    let msgs = numbered(3, "d");
    store.append(&key, &msgs, opts(3600, 0)).await.unwrap();
    assert!(store.delete(&key).await.unwrap(), "{name}");
    assert!(!store.delete(&key).await.unwrap(), "{name}: second delete");
    assert!(load_all(&store, &key, 0).await.is_none(), "{name}");
    assert!(store.meta(&key).await.unwrap().is_none(), "{name}");
    assert!(listed(&store, key.user()).await.is_empty(), "{name}");
    // The same ids may be written again: the dedupe record went with the session.
    let out = store.append(&key, &msgs, opts(3600, 0)).await.unwrap();
    assert_eq!(out.stored(), 3, "{name}");
    assert_eq!(out.seqs[0], Some(1), "{name}: seqs restart");
}

/// `create` makes an empty session once and keeps existing ones.
pub async fn create_is_idempotent(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("create");
    let meta = store.create(&key, Ttl::secs(3600)).await.unwrap();
    assert_eq!(meta.message_count, 0, "{name}");
    store
        .append(&key, &numbered(2, "c"), opts(3600, 0))
        .await
        .unwrap();
    let again = store.create(&key, Ttl::secs(3600)).await.unwrap();
    assert_eq!(again.message_count, 2, "{name}");
    assert_eq!(again.created_at_ms, meta.created_at_ms, "{name}");
    let loaded = load_all(&store, &key, 0).await.unwrap();
    assert_eq!(loaded.messages.len(), 2, "{name}");
}

/// TTL 0 means the session never expires.
pub async fn ttl_zero_never_expires(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("forever");
    let out = store
        .append(&key, &numbered(1, "f"), opts(0, 0))
        .await
        .unwrap();
    assert_eq!(out.meta.ttl_remaining_secs, None, "{name}");
    // Switching a session to TTL 0 removes an expiry set before.
    let key2 = unique_key("forever2");
    store
        .append(&key2, &numbered(1, "f"), opts(60, 0))
        .await
        .unwrap();
    let loaded = store
        .load(&key2, ReadFrom::After(0), ALL, Ttl::NEVER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.meta.ttl_remaining_secs, None, "{name}");
}

/// A corrupt entry is skipped and reported; the rest of the session loads.
pub async fn corrupt_entries_are_skipped(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("corrupt");
    store
        .append(&key, &numbered(2, "ok"), opts(3600, 0))
        .await
        .unwrap();
    if !f.plant_corrupt(&key).await {
        return;
    }
    store
        .append(&key, &numbered(1, "after"), opts(3600, 0))
        .await
        .unwrap();
    let loaded = load_all(&store, &key, 0).await.unwrap();
    assert_eq!(loaded.messages.len(), 3, "{name}: good entries must load");
    assert_eq!(
        loaded.corrupt.len(),
        1,
        "{name}: the bad entry must be reported"
    );
    let manager = SessionManager::new(f.open().await, ManagerConfig::default());
    let history = manager
        .history(&key)
        .await
        .expect("history despite corruption");
    assert_eq!(history.len(), 3, "{name}");
    assert_eq!(history.corrupt_skipped(), 1, "{name}");
}

/// Many tasks appending to one session at once: every message once, each task's order kept.
pub async fn concurrent_appends_keep_every_message_once(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("concurrent");
    let tasks = 4;
    let per_task = 50;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = f.open().await;
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..per_task {
                let m = Message::user(format!("task {t} msg {i}"));
                store
                    .append(&key, &[m], opts(3600, 0))
                    .await
                    .expect("append");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let loaded = load_all(&store, &key, 0).await.unwrap();
    assert_eq!(loaded.messages.len(), tasks * per_task, "{name}");
    assert_eq!(
        loaded.meta.message_count as usize,
        tasks * per_task,
        "{name}"
    );
    assert_writer_order(
        &loaded
            .messages
            .iter()
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>(),
        tasks,
        per_task,
    );
}

/// Checks that messages `"task T msg I"` hold every (T, I) once, each task in order.
pub fn assert_writer_order(messages: &[Message], tasks: usize, per_task: usize) {
    let mut next = vec![0usize; tasks];
    for m in messages {
        let parts: Vec<&str> = m.content.split_whitespace().collect();
        let (t, i): (usize, usize) = match parts.as_slice() {
            [_, t, "msg", i] => (t.parse().expect("task"), i.parse().expect("index")),
            _ => panic!("unexpected message {:?}", m.content),
        };
        assert_eq!(i, next[t], "task {t}: message {i} out of order or doubled");
        next[t] += 1;
    }
    assert_eq!(next, vec![per_task; tasks], "some messages are missing");
}
