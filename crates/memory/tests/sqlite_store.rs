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

    fn expires_idle_sessions(&self) -> bool {
        false
    }

    fn purges_idle_sessions(&self) -> bool {
        true
    }

    fn searches(&self) -> bool {
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
async fn the_ttl_deletes_nothing_even_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let key = SessionKey::new("bob", "old").unwrap();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        let outcome = store
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
        assert_eq!(outcome.meta.ttl_remaining_secs, None);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Past its TTL, the conversation is still whole: in the file, listed, readable.
    let store = SqliteStore::open(&path).await.unwrap();
    let page = store.list("bob", None, 10).await.unwrap();
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.sessions[0].ttl_remaining_secs, None);
    let meta = store.meta(&key).await.unwrap().expect("kept");
    assert_eq!((meta.message_count, meta.ttl_remaining_secs), (1, None));
    let conn = rusqlite_conn(&path);
    let (rows, expiring): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM messages WHERE user = 'bob'),
                    (SELECT count(*) FROM sessions WHERE expires_at IS NOT NULL)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, expiring), (1, 0));
}

/// The schema as it was before titles: what a file made by an older version holds.
const SCHEMA_BEFORE_TITLES: &str = "
CREATE TABLE sessions (
    user          TEXT    NOT NULL,
    session       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    expires_at    INTEGER,
    message_count INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    trimmed_seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user, session)
) WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE messages (
    user       TEXT    NOT NULL,
    session    TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    id         TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    sources    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    PRIMARY KEY (user, session, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_id ON messages (user, session, id);
INSERT INTO sessions VALUES ('carol', 'old', 1000, 2000, NULL, 2, 23, 2, 0);
INSERT INTO messages VALUES
    ('carol', 'old', 1, '0190b5a0-0000-7000-8000-000000000001', 'user', 'An old question?', '', 1000, 'complete'),
    ('carol', 'old', 2, '0190b5a0-0000-7000-8000-000000000002', 'assistant', 'Yes.', '', 2000, 'complete');
";

#[tokio::test]
async fn a_file_from_before_titles_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    rusqlite_conn(&path)
        .execute_batch(SCHEMA_BEFORE_TITLES)
        .expect("old schema");
    let old = SessionKey::new("carol", "old").unwrap();
    let opts = ragchat_memory::store::AppendOptions::KEEP_ALL;
    {
        let store = SqliteStore::open(&path).await.expect("upgrade");
        let meta = store.meta(&old).await.unwrap().expect("kept");
        assert_eq!((meta.message_count, meta.title), (2, None));
        // Its first question is not among the next append's messages: it is never
        // titled automatically (readers derive its title), whatever comes next.
        let later = [ragchat_memory::Message::user("A later question")];
        let outcome = store.append(&old, &later, opts).await.unwrap();
        assert_eq!((outcome.meta.message_count, outcome.meta.title), (3, None));
        assert!(store.set_title(&old, Some("Kept notes")).await.unwrap());
        let new = SessionKey::new("carol", "new").unwrap();
        let first = [ragchat_memory::Message::user("A new question")];
        store.append(&new, &first, opts).await.unwrap();
    }
    // Opening the upgraded file again changes nothing.
    let store = SqliteStore::open(&path).await.expect("reopen");
    let page = store.list("carol", None, 10).await.unwrap();
    let mut titles: Vec<(&str, Option<&str>)> = page
        .sessions
        .iter()
        .map(|s| (s.session.as_str(), s.title.as_deref()))
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [("new", Some("A new question")), ("old", Some("Kept notes"))]
    );
    assert!(store.set_title(&old, None).await.unwrap());
    assert_eq!(store.meta(&old).await.unwrap().unwrap().title, None);
}
