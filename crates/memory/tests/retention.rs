//! Retention through the manager, on real SQLite files: a pass deletes what is idle
//! longer than the retention (in batches), leaves the rest, frees what the sessions
//! held, keeps no copy in the cache, and a journal entry of a purged session does not
//! bring it back. Files made before the TTL stopped deleting are migrated.
//!
//! Idle sessions are planted with an old last activity straight in the file, so no
//! check waits for time to pass.
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::journal::Journal;
use ragchat_memory::manager::RETENTION_BATCH;
use ragchat_memory::{
    JournalConfig, ManagerConfig, MemoryError, Message, SessionKey, SessionManager, SessionStore,
};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// When the planted sessions were last active: 1970, long past any retention.
const LONG_AGO_MS: i64 = 1_000;

fn conn(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

/// Writes `sessions` sessions of `user`, one message each, last active long ago.
fn plant_idle(path: &Path, user: &str, sessions: usize) {
    let mut conn = conn(path);
    let tx = conn.transaction().unwrap();
    for i in 0..sessions {
        let session = format!("idle-{i:04}");
        let id = ragchat_memory::MessageId::new().to_string();
        tx.execute(
            "INSERT INTO sessions (user, session, created_at, updated_at, message_count, bytes,
                                   last_seq, auto_title)
             VALUES (?1, ?2, ?3, ?3, 1, 15, 1, 'An old question')",
            rusqlite::params![user, session, LONG_AGO_MS],
        )
        .unwrap();
        tx.execute(
            "INSERT INTO messages (user, session, seq, id, role, content, sources, created_at, status)
             VALUES (?1, ?2, 1, ?3, 'user', 'An old question', '', ?4, 'complete')",
            rusqlite::params![user, session, id, LONG_AGO_MS],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

async fn store_at(path: &Path) -> Arc<dyn SessionStore> {
    Arc::new(SqliteStore::open(path).await.expect("open sqlite"))
}

#[tokio::test]
async fn a_pass_deletes_only_what_is_idle_past_the_retention_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = store_at(&path).await;
    let many = RETENTION_BATCH + 1;
    plant_idle(&path, "olga", many);
    plant_idle(&path, "pete", 1);
    let manager = SessionManager::new(store, ManagerConfig::default());
    let fresh = SessionKey::new("olga", "fresh").unwrap();
    manager
        .append(&fresh, vec![Message::user("still here?")])
        .await
        .unwrap();
    // One idle session is in the cache: the pass must not leave it there.
    let cached = SessionKey::new("pete", "idle-0000").unwrap();
    assert_eq!(manager.history(&cached).await.unwrap().len(), 1);

    let pass = manager.purge_idle_once(DAY).await.unwrap();
    assert_eq!(pass.deleted, many as u64 + 1);
    assert_eq!(pass.batches, 2, "{pass:?}");
    assert_eq!(manager.retention_deleted(), many as u64 + 1);
    assert_eq!(
        manager.status().await.unwrap().retention_deleted,
        many as u64 + 1
    );

    assert!(manager.history(&cached).await.unwrap().is_empty());
    assert!(manager.stats(&cached).await.unwrap().is_none());
    let left = manager.list_sessions("olga").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].session, "fresh");
    assert!(manager.list_sessions("pete").await.unwrap().is_empty());
    let rows: i64 = conn(&path)
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "only the fresh session's message is left");

    // A second pass finds nothing.
    let again = manager.purge_idle_once(DAY).await.unwrap();
    assert_eq!((again.deleted, again.batches), (0, 1));
}

#[tokio::test]
async fn purged_messages_leave_no_plaintext_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = store_at(&path).await;
    plant_idle(&path, "quin", 3);
    let manager = SessionManager::new(store, ManagerConfig::default());
    let pass = manager.purge_idle_once(DAY).await.unwrap();
    assert_eq!(pass.deleted, 3);
    for suffix in ["", "-wal"] {
        let file = dir.path().join(format!("s.db{suffix}"));
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let secret = b"An old question";
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "{} still holds a purged message",
            file.display()
        );
    }
}

#[tokio::test]
async fn zero_is_refused_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = store_at(&path).await;
    plant_idle(&path, "rita", 1);
    let manager = SessionManager::new(store, ManagerConfig::default());
    let refused = manager.purge_idle_once(Duration::ZERO).await;
    assert!(
        matches!(refused, Err(MemoryError::InvalidInput(_))),
        "{refused:?}"
    );
    assert_eq!(manager.list_sessions("rita").await.unwrap().len(), 1);
}

/// A journal entry written for a session before retention deleted it (here: by
/// another process sharing the journal file, while the store was down) would be
/// replayed into the store and bring the session back. The pass drops it with the
/// session.
#[tokio::test]
async fn an_old_journal_entry_does_not_bring_a_purged_session_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let journal_path = dir.path().join("journal.db");
    let store = store_at(&path).await;
    plant_idle(&path, "sam", 1);
    let key = SessionKey::new("sam", "idle-0000").unwrap();
    let config = ManagerConfig {
        journal: Some(JournalConfig {
            path: journal_path.clone(),
            max_bytes: 1 << 20,
        }),
        background_replay: false,
        ..ManagerConfig::default()
    };
    let manager = SessionManager::with_journal(Arc::clone(&store), config.clone()).unwrap();
    let other_process = Journal::open(config.journal.clone().unwrap(), &store.identity()).unwrap();
    other_process
        .append(&key, &[Message::user("written while the store was down")])
        .await
        .unwrap();
    conn(&journal_path)
        .execute(
            "UPDATE journal SET journaled_at = ?1",
            rusqlite::params![LONG_AGO_MS],
        )
        .unwrap();

    let pass = manager.purge_idle_once(DAY).await.unwrap();
    assert_eq!((pass.deleted, pass.journal_entries_dropped), (1, 1));
    let replay = manager.replay_journal().await.unwrap();
    assert_eq!((replay.replayed, replay.remaining), (0, 0), "{replay:?}");
    assert!(manager.history(&key).await.unwrap().is_empty());
    assert!(manager.stats(&key).await.unwrap().is_none());
    assert!(manager.list_sessions("sam").await.unwrap().is_empty());
}

/// Journaled messages are activity the store has not seen yet: a pass replays them
/// first, so the session they belong to is not idle, and nothing is lost.
#[tokio::test]
async fn journaled_messages_count_as_activity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = store_at(&path).await;
    plant_idle(&path, "tess", 1);
    let key = SessionKey::new("tess", "idle-0000").unwrap();
    let journal = JournalConfig {
        path: dir.path().join("journal.db"),
        max_bytes: 1 << 20,
    };
    Journal::open(journal.clone(), &store.identity())
        .unwrap()
        .append(&key, &[Message::user("I am back")])
        .await
        .unwrap();
    let config = ManagerConfig {
        journal: Some(journal),
        background_replay: false,
        ..ManagerConfig::default()
    };
    let manager = SessionManager::with_journal(store, config).unwrap();
    let pass = manager.purge_idle_once(DAY).await.unwrap();
    assert_eq!(pass.deleted, 0, "{pass:?}");
    let history = manager.history(&key).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["An old question", "I am back"]);
}

/// A file from the versions whose TTL deleted idle sessions: a session past its
/// expiry but not yet swept out of the file comes back, and nothing expires again.
#[tokio::test]
async fn a_file_whose_sessions_expired_is_migrated_and_they_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    drop(store_at(&path).await);
    {
        let conn = conn(&path);
        conn.execute_batch("PRAGMA user_version = 0").unwrap();
        conn.execute_batch(
            "CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL",
        )
        .unwrap();
    }
    plant_idle(&path, "uma", 2);
    conn(&path)
        .execute("UPDATE sessions SET expires_at = 2000", [])
        .unwrap();

    let store = store_at(&path).await;
    let page = store.list("uma", None, 10).await.unwrap();
    assert_eq!(page.sessions.len(), 2);
    assert!(page.sessions.iter().all(|s| s.ttl_remaining_secs.is_none()));
    let conn = conn(&path);
    let (expiring, version, old_index): (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM sessions WHERE expires_at IS NOT NULL),
                    (SELECT user_version FROM pragma_user_version),
                    (SELECT count(*) FROM sqlite_master WHERE name = 'sessions_by_expiry')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((expiring, version, old_index), (0, 2, 0));
}
