//! The conformance checks that go through a `SessionManager`: what a process sees of
//! a store (restarts, several managers, input limits, context, export, TTL).

use std::time::Duration;

use super::{numbered, unique_key, StoreFixture};
use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, Role, SessionKey};
use crate::store::Ttl;

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

/// Reads `key` through `manager` until `done` holds for its history, for at most 20 s
/// (room for a loaded machine; it returns as soon as `done` holds),
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
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
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
/// On a store that does not expire sessions, the idle one is still whole after its TTL.
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
    if !f.expires_idle_sessions() {
        // A durable store keeps every conversation: the TTL deletes nothing.
        assert_eq!(stats.ttl_remaining_secs, None, "{name}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(2300)).await;
        let fresh = SessionManager::new(f.open().await, ManagerConfig::default());
        assert_eq!(
            fresh.history(&idle).await.unwrap().len(),
            2,
            "{name}: a durable store expired an idle session"
        );
        return;
    }
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
