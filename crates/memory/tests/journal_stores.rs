//! The journal and the stores it was written for (issue 11, defect 3): entries replay
//! only into their own store; a journal written before entries named their store is
//! migrated, its entries kept as unlabelled and replayed only once an operator adopts
//! them for a store.
#![cfg(all(feature = "redis", feature = "sqlite"))]

use std::time::Duration;

use ragchat_memory::journal::UNLABELLED_STORE;
use ragchat_memory::{
    open_store, JournalConfig, ManagerConfig, Message, SessionKey, SessionManager, StoreOptions,
};
use ragchat_testkit::durable_redis_or_skip;

fn options() -> StoreOptions {
    StoreOptions {
        connect_timeout: Duration::from_millis(250),
        command_timeout: Duration::from_millis(250),
        lazy: true,
        ..StoreOptions::default()
    }
}

async fn manager(url: &str, journal: &std::path::Path) -> SessionManager {
    let store = open_store(url, &options()).await.unwrap();
    SessionManager::with_journal(
        store,
        ManagerConfig {
            journal: Some(JournalConfig {
                path: journal.to_path_buf(),
                max_bytes: 1 << 20,
            }),
            background_replay: false,
            ..ManagerConfig::default()
        },
    )
    .unwrap()
}

async fn stored(url: &str, key: &SessionKey) -> Vec<String> {
    let plain = SessionManager::new(
        open_store(url, &StoreOptions::default()).await.unwrap(),
        ManagerConfig::default(),
    );
    plain
        .history(key)
        .await
        .unwrap()
        .iter()
        .map(|m| m.content.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_replay_only_into_the_store_they_were_written_for() {
    let (Some(mut first), Some(second)) = (durable_redis_or_skip(), durable_redis_or_skip()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let key = SessionKey::new("olga", "s").unwrap();
    first.stop();
    let writer = manager(&first.url(), &journal).await;
    assert!(
        writer
            .append(&key, vec![Message::user("for the first store")])
            .await
            .unwrap()
            .journaled
    );
    drop(writer);

    // The same journal with another Redis: kept, reported, not replayed there.
    let other = manager(&second.url(), &journal).await;
    let report = other.replay_journal().await.unwrap();
    assert_eq!((report.replayed, report.remaining), (0, 0), "{report:?}");
    assert_eq!(report.other_stores.len(), 1, "{report:?}");
    assert_eq!(report.other_stores[0].entries, 1);
    assert!(!report.other_stores[0]
        .store
        .contains(&second.port().to_string()));
    let status = other.status().await.unwrap();
    assert_eq!(status.pending_sync, 0);
    assert_eq!(status.other_stores.len(), 1);
    assert!(stored(&second.url(), &key).await.is_empty());
    assert!(other.history(&key).await.unwrap().is_empty());

    // Its own store takes it once it is back.
    first.start_again();
    let own = manager(&first.url(), &journal).await;
    let report = own.replay_journal().await.unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert!(report.other_stores.is_empty(), "{report:?}");
    assert_eq!(stored(&first.url(), &key).await, ["for the first store"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_from_before_store_identities_waits_to_be_adopted() {
    let Some(redis) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let key = SessionKey::new("pia", "s").unwrap();
    let message = Message::user("written by an older ragchat");
    // The journal as the version before this one wrote it.
    let conn = rusqlite::Connection::open(&journal).unwrap();
    conn.execute_batch(
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL,
             session TEXT NOT NULL, message TEXT NOT NULL, bytes INTEGER NOT NULL,
             journaled_at INTEGER NOT NULL);
         CREATE INDEX journal_by_session ON journal (user, session, seq);
         CREATE TABLE journal_size (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL,
             bytes INTEGER NOT NULL);
         INSERT INTO journal_size VALUES (1, 0, 0);
         CREATE TABLE journal_rejects (seq INTEGER PRIMARY KEY, user TEXT, session TEXT,
             message TEXT, reason TEXT NOT NULL);",
    )
    .unwrap();
    let json = serde_json::to_string(&message).unwrap();
    conn.execute(
        "INSERT INTO journal (user, session, message, bytes, journaled_at) VALUES ('pia', 's', ?1, ?2, 0)",
        rusqlite::params![json, json.len() as i64],
    )
    .unwrap();
    drop(conn);

    let m = manager(&redis.url(), &journal).await;
    let report = m.replay_journal().await.unwrap();
    assert_eq!(report.replayed, 0, "nobody knows which store it was for");
    assert_eq!(report.other_stores[0].store, UNLABELLED_STORE);
    assert!(stored(&redis.url(), &key).await.is_empty());

    assert_eq!(m.journal().unwrap().adopt_unlabelled().await.unwrap(), 1);
    let report = m.replay_journal().await.unwrap();
    assert_eq!(report.replayed, 1, "{report:?}");
    assert!(report.other_stores.is_empty());
    assert_eq!(stored(&redis.url(), &key).await, [message.content.as_str()]);
}
