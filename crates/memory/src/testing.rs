//! The backend conformance suite: the `SessionStore` contract, written once and run
//! against every backend (each backend's test file supplies a [`StoreFixture`]).
//!
//! Enabled with the `test-utils` feature. Every check panics with a message that
//! names the backend and what went wrong.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, MessageId, MessageStatus, Role, SessionKey, SourceRef};
use crate::store::{AppendOptions, SessionStore, Ttl};

/// Supplies handles on the backend under test.
#[async_trait]
pub trait StoreFixture: Send + Sync {
    /// A new handle (new connection) on the same data.
    async fn open(&self) -> Arc<dyn SessionStore>;

    /// Writes an undecodable entry into the session, directly in the backend, after
    /// the session's existing messages. Returns `false` when the backend cannot hold
    /// corrupt data (RAM).
    async fn plant_corrupt(&self, key: &SessionKey) -> bool;
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
    }
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
    let ttl = out.meta.ttl_remaining_secs.expect("ttl set");
    assert!((3590..=3600).contains(&ttl), "{name}: ttl {ttl}");

    let loaded = store
        .load(&key, 0, Ttl::secs(3600))
        .await
        .expect("load")
        .expect("exists");
    let got: Vec<Message> = loaded.messages.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(got, msgs, "{name}: messages differ after a round trip");
    assert_eq!(
        loaded.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "{name}"
    );
    assert!(loaded.corrupt.is_empty(), "{name}");
    assert!(
        store
            .load(&unique_key("missing"), 0, Ttl::secs(60))
            .await
            .expect("load")
            .is_none(),
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
    let loaded = store.load(&key, 0, Ttl::secs(3600)).await.unwrap().unwrap();
    assert_eq!(loaded.messages.len(), 5, "{name}");
}

/// `load(after)` returns only entries after `after`.
pub async fn load_after_returns_only_newer_entries(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("after");
    let msgs = numbered(5, "x");
    store.append(&key, &msgs, opts(3600, 0)).await.unwrap();
    let loaded = store.load(&key, 3, Ttl::secs(3600)).await.unwrap().unwrap();
    let seqs: Vec<u64> = loaded.messages.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![4, 5], "{name}");
    assert_eq!(loaded.messages[0].1, msgs[3], "{name}");
    let none = store.load(&key, 5, Ttl::secs(3600)).await.unwrap().unwrap();
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
    let loaded = store.load(&key, 0, Ttl::secs(3600)).await.unwrap().unwrap();
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
    let list = store.list(&user).await.unwrap();
    let names: Vec<&str> = list.iter().map(|s| s.session.as_str()).collect();
    assert_eq!(names, vec!["second", "first"], "{name}");
    assert_eq!(list[1].message_count, 2, "{name}");
    assert!(list[0].ttl_remaining_secs.is_some(), "{name}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    store
        .append(&a, &numbered(1, "a2"), opts(3600, 0))
        .await
        .unwrap();
    let list = store.list(&user).await.unwrap();
    assert_eq!(list[0].session, "first", "{name}: newest activity first");
    assert!(
        store.list("nobody-here").await.unwrap().is_empty(),
        "{name}"
    );
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
    assert!(
        store.load(&key, 0, Ttl::secs(60)).await.unwrap().is_none(),
        "{name}"
    );
    assert!(store.meta(&key).await.unwrap().is_none(), "{name}");
    assert!(store.list(key.user()).await.unwrap().is_empty(), "{name}");
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
    let loaded = store.load(&key, 0, Ttl::secs(3600)).await.unwrap().unwrap();
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
    let loaded = store.load(&key2, 0, Ttl::NEVER).await.unwrap().unwrap();
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
    let loaded = store.load(&key, 0, Ttl::secs(3600)).await.unwrap().unwrap();
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
    let loaded = store.load(&key, 0, Ttl::secs(3600)).await.unwrap().unwrap();
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

/// A new manager (as a new process would have) reads the whole history.
pub async fn a_second_manager_sees_the_whole_history(f: &dyn StoreFixture) {
    let first = SessionManager::new(f.open().await, ManagerConfig::default());
    let name = first.store_url();
    let key = unique_key("restart");
    first
        .add_message(&key, Role::User, "What is ML?", vec![])
        .await
        .unwrap();
    first
        .add_message(&key, Role::Assistant, "Machine learning is ...", vec![])
        .await
        .unwrap();
    drop(first);
    let second = SessionManager::new(f.open().await, ManagerConfig::default());
    let history = second.history(&key).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        vec!["What is ML?", "Machine learning is ..."],
        "{name}"
    );
    let stats = second.stats(&key).await.unwrap().expect("stats");
    assert_eq!(stats.message_count, 2, "{name}");
    assert_eq!(stats.user, key.user());
}

/// Reads `key` through `manager` until `done` holds for its history, for at most 5 s,
/// and returns that history (the last one read when time ran out).
///
/// A store that vouches for cached copies (Redis with client-side caching) shows a
/// write made through another connection once that write's invalidation has reached
/// this process, a moment after the write was acknowledged; stores that cannot vouch
/// show it on the first read.
pub async fn read_until(
    manager: &SessionManager,
    key: &SessionKey,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let history = manager.history(key).await.expect("history").to_vec();
        if done(&history) || std::time::Instant::now() >= deadline {
            return history;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Two managers on one store see each other's appends through their caches.
pub async fn managers_stay_coherent(f: &dyn StoreFixture) {
    let a = SessionManager::new(f.open().await, ManagerConfig::default());
    let b = SessionManager::new(f.open().await, ManagerConfig::default());
    let name = a.store_url();
    let key = unique_key("coherent");
    a.append(&key, numbered(2, "from a")).await.unwrap();
    assert_eq!(
        read_until(&b, &key, |h| h.len() == 2).await.len(),
        2,
        "{name}"
    );
    b.append(&key, numbered(3, "from b")).await.unwrap();
    a.append(&key, numbered(1, "a again")).await.unwrap();
    let ha = read_until(&a, &key, |h| h.len() == 6).await;
    let hb = read_until(&b, &key, |h| h.len() == 6).await;
    assert_eq!(ha.len(), 6, "{name}");
    assert_eq!(ha, hb, "{name}: cached views differ");
    // A delete through one manager is seen by the other.
    assert!(b.delete(&key).await.unwrap());
    assert!(
        read_until(&a, &key, |h| h.is_empty()).await.is_empty(),
        "{name}"
    );
    // And a recreated session is not confused with the old cached one.
    b.append(&key, numbered(1, "reborn")).await.unwrap();
    read_until(&a, &key, |h| h.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(3)).await;
    assert!(a.delete(&key).await.unwrap());
    b.append(&key, numbered(2, "again")).await.unwrap();
    let ha = read_until(&a, &key, |h| {
        h.first().is_some_and(|m| m.content == "again 0")
    })
    .await;
    assert_eq!(
        ha.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["again 0", "again 1"],
        "{name}"
    );
}

/// Empty or oversized content is refused with a clear error and nothing is stored.
pub async fn manager_rejects_bad_input_and_writes_nothing(f: &dyn StoreFixture) {
    let config = ManagerConfig {
        max_content_bytes: 100,
        ..ManagerConfig::default()
    };
    let manager = SessionManager::new(f.open().await, config);
    let name = manager.store_url();
    let key = unique_key("badinput");
    for (content, why) in [
        ("", "empty"),
        ("   \n", "empty"),
        (&"x".repeat(101)[..], "101 bytes"),
    ] {
        let err = manager
            .add_message(&key, Role::User, content, vec![])
            .await
            .expect_err("must be refused");
        assert!(
            matches!(err, crate::MemoryError::InvalidInput(_)),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(why), "{name}: {err}");
    }
    // One bad message in a batch refuses the whole batch.
    let batch = vec![Message::user("fine"), Message::user("")];
    assert!(manager.append(&key, batch).await.is_err());
    assert!(
        manager.stats(&key).await.unwrap().is_none(),
        "{name}: something was written"
    );
    assert!(manager.history(&key).await.unwrap().is_empty(), "{name}");
    assert!(manager.list_sessions("../x").await.is_err(), "{name}");
}

/// The context window keeps the newest whole messages within the budget.
pub async fn context_window_fits_the_budget(f: &dyn StoreFixture) {
    let manager = SessionManager::new(f.open().await, ManagerConfig::default());
    let key = unique_key("context");
    manager
        .append(
            &key,
            vec![
                Message::user("a".repeat(400)),
                Message::assistant("b".repeat(40)),
                Message::user("c".repeat(40)),
            ],
        )
        .await
        .unwrap();
    let text = manager.format_history_as_context(&key, 30).await.unwrap();
    assert_eq!(
        text,
        format!("Assistant: {}\nUser: {}", "b".repeat(40), "c".repeat(40))
    );
    let window = manager.context_window(&key, 10_000).await.unwrap();
    assert_eq!(window.len(), 3);
}

/// An export holds every session of the user with its messages.
pub async fn export_holds_every_session(f: &dyn StoreFixture) {
    let manager = SessionManager::new(f.open().await, ManagerConfig::default());
    let key = unique_key("one");
    let two = SessionKey::new(key.user(), "two").unwrap();
    manager.append(&key, numbered(2, "one")).await.unwrap();
    manager.append(&two, numbered(3, "two")).await.unwrap();
    let export = manager.export(key.user()).await.unwrap();
    assert_eq!(export.sessions.len(), 2);
    let total: usize = export.sessions.iter().map(|s| s.messages.len()).sum();
    assert_eq!(total, 5);
    let json = serde_json::to_value(&export).unwrap();
    assert_eq!(json["user"], key.user());
    assert!(json["sessions"][0]["messages"][0]["id"].is_string());
}

/// A session idle past its TTL is gone; one read every ~second keeps another alive.
pub async fn sliding_ttl(f: &dyn StoreFixture) {
    let config = ManagerConfig {
        ttl: Ttl::secs(2),
        ..ManagerConfig::default()
    };
    let manager = SessionManager::new(f.open().await, config);
    let name = manager.store_url();
    let idle = unique_key("idle");
    let busy = SessionKey::new(idle.user(), "busy").unwrap();
    manager.append(&idle, numbered(2, "i")).await.unwrap();
    manager.append(&busy, numbered(2, "b")).await.unwrap();
    let stats = manager.stats(&busy).await.unwrap().unwrap();
    assert!(
        matches!(stats.ttl_remaining_secs, Some(1..=2)),
        "{name}: {stats:?}"
    );
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(
            manager.history(&busy).await.unwrap().len(),
            2,
            "{name}: busy expired"
        );
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // 3.1 s after its last use: the idle session is gone everywhere.
    assert!(
        manager.stats(&idle).await.unwrap().is_none(),
        "{name}: idle survived"
    );
    assert!(manager.history(&idle).await.unwrap().is_empty(), "{name}");
    let listed: Vec<String> = manager
        .list_sessions(idle.user())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session)
        .collect();
    assert_eq!(listed, vec!["busy".to_string()], "{name}");
    let fresh = SessionManager::new(f.open().await, ManagerConfig::default());
    assert_eq!(fresh.history(&busy).await.unwrap().len(), 2, "{name}");
}
