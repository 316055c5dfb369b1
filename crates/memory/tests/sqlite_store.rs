//! The conformance suite on `sqlite://` (a real file in a temp dir), plus SQLite specifics.
#![cfg(feature = "sqlite")]

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::testing::{self, StoreFixture};
use ragchat_memory::{open_store, SessionKey, SessionStore, StoreOptions, Ttl};

struct Fixture {
    path: PathBuf,
}

#[async_trait]
impl StoreFixture for Fixture {
    async fn open(&self) -> Arc<dyn SessionStore> {
        Arc::new(SqliteStore::open(&self.path).await.expect("open sqlite"))
    }

    async fn plant_corrupt(&self, key: &SessionKey) -> bool {
        let conn = rusqlite_conn(&self.path);
        conn.execute(
            "INSERT INTO messages (user, session, seq, id, role, content, sources, created_at, status)
             SELECT user, session, last_seq + 1, 'not-a-uuid', 'robot', 'x', '{bad', 0, 'complete'
               FROM sessions WHERE user = ?1 AND session = ?2",
            [key.user(), key.session()],
        )
        .expect("plant");
        conn.execute(
            "UPDATE sessions SET last_seq = last_seq + 1, message_count = message_count + 1
              WHERE user = ?1 AND session = ?2",
            [key.user(), key.session()],
        )
        .expect("plant meta");
        true
    }
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Fixture {
        path: dir.path().join("nested/dir/sessions.db"),
    };
    testing::run_all(&fixture).await;
}

#[tokio::test]
async fn opens_by_url_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let key = SessionKey::new("alice", "default").unwrap();
    {
        let store = open_store(&url, &StoreOptions::default()).await.unwrap();
        let msgs = vec![ragchat_memory::Message::user("hi")];
        store
            .append(
                &key,
                &msgs,
                ragchat_memory::store::AppendOptions {
                    ttl: Ttl::secs(60),
                    max_messages: 0,
                    refresh_ttl: true,
                    quotas: ragchat_memory::Quotas::UNBOUNDED,
                },
            )
            .await
            .unwrap();
    }
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let loaded = store
        .load(
            &key,
            ragchat_memory::ReadFrom::After(0),
            ragchat_memory::ReadLimit::new(100, 1 << 20),
            Ttl::secs(60),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.messages.len(), 1);
    assert!(dir.path().join("s.db-wal").exists() || dir.path().join("s.db").exists());
}

#[tokio::test]
async fn expired_sessions_are_purged_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = SessionKey::new("bob", "old").unwrap();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .append(
                &key,
                &[ragchat_memory::Message::user("bye")],
                ragchat_memory::store::AppendOptions {
                    ttl: Ttl::secs(1),
                    max_messages: 0,
                    refresh_ttl: true,
                    quotas: ragchat_memory::Quotas::UNBOUNDED,
                },
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Opening sweeps expired sessions out of the file, not just out of sight.
    let _store = SqliteStore::open(&path).await.unwrap();
    let conn = rusqlite_conn(&path);
    let rows: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE user = 'bob'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0);
}
