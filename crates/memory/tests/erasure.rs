//! Erasure leaves no plaintext on disk (issue 11, defect 7): after a user's data is
//! deleted, neither the local journal nor the SQLite store holds it in free pages or
//! in the write-ahead log; and both files are private to their owner (0600, in a
//! folder ragchat creates 0700).
#![cfg(feature = "sqlite")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::testing::wait_drained;
use ragchat_memory::{
    open_store, JournalConfig, ManagerConfig, Message, MessageId, SessionKey, SessionManager,
    StoreOptions,
};
use ragchat_testkit::durable_redis_or_skip;

/// Every file of an SQLite database (main file, WAL, shared memory), as bytes.
fn database_bytes(db: &Path) -> Vec<(String, Vec<u8>)> {
    let name = db.file_name().unwrap().to_string_lossy().to_string();
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| db.with_file_name(format!("{name}{suffix}")))
        .filter(|p| p.exists())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn assert_absent(db: &Path, secret: &str) {
    for (file, bytes) in database_bytes(db) {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{file} still holds the erased text");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn assert_private(db: &Path) {
    let dir = db.parent().unwrap();
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for (file, _) in database_bytes(db) {
        assert_eq!(mode(Path::new(&file)), 0o600, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_messages_leave_no_trace_in_the_journal_file() {
    let Some(mut server) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("data").join("journal.db");
    let options = StoreOptions {
        connect_timeout: Duration::from_millis(250),
        command_timeout: Duration::from_millis(250),
        lazy: true,
        ..StoreOptions::default()
    };
    let store = open_store(&server.url(), &options).await.unwrap();
    let manager = SessionManager::with_journal(
        store,
        ManagerConfig {
            journal: Some(JournalConfig {
                path: journal.clone(),
                max_bytes: 1 << 30,
            }),
            replay_interval: Duration::from_millis(100),
            ..ManagerConfig::default()
        },
    )
    .unwrap();
    let key = SessionKey::new("gina", "private").unwrap();
    manager
        .append(&key, vec![Message::user("hello")])
        .await
        .unwrap();

    server.stop();
    let secret = format!("SECRET-{}", MessageId::new());
    for i in 0..20 {
        let receipt = manager
            .append(
                &key,
                vec![Message::user(format!("{i} {secret} {}", "z".repeat(2000)))],
            )
            .await
            .unwrap();
        assert!(receipt.journaled);
    }
    server.start_again();
    wait_drained(&manager, Duration::from_secs(60)).await;

    assert_eq!(manager.delete_user("gina").await.unwrap(), 1);
    assert_absent(&journal, &secret);
    assert_private(&journal);
}

#[tokio::test]
async fn erased_messages_leave_no_trace_in_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("sessions.db");
    let store = Arc::new(SqliteStore::open(&db).await.unwrap());
    let manager = SessionManager::new(store, ManagerConfig::default());
    let key = SessionKey::new("hugo", "private").unwrap();
    let keep = SessionKey::new("ines", "kept").unwrap();
    let secret = format!("SECRET-{}", MessageId::new());
    for i in 0..20 {
        manager
            .append(
                &key,
                vec![Message::user(format!("{i} {secret} {}", "z".repeat(2000)))],
            )
            .await
            .unwrap();
        manager
            .append(&keep, vec![Message::user(format!("{i} other"))])
            .await
            .unwrap();
    }
    assert_eq!(manager.delete_user("hugo").await.unwrap(), 1);
    assert_absent(&db, &secret);
    assert_private(&db);
    assert_eq!(manager.history(&keep).await.unwrap().len(), 20);
}
