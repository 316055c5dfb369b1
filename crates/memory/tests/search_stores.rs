//! Search beyond the conformance suite (issue 17): files and databases from before
//! search are indexed when opened; retention removes hits at once; Redis with an
//! archive finds a message as soon as its append is acknowledged on the server that
//! took it (a recall's query, not `fresh`, only once archived), on every other server
//! once archived, and never after a delete.
#![cfg(all(feature = "redis", feature = "sqlite", feature = "postgres"))]

mod tiers_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::testing::unique_key;
use ragchat_memory::tier::TierConfig;
use ragchat_memory::{
    open_store, MemoryError, Message, SearchPage, SearchQuery, SessionKey, SessionStore,
    StoreOptions,
};
use ragchat_testkit::{postgres_or_skip, redis_or_skip};
use tiers_support::{config, eventually, opts, tiered, Archive};

async fn search(store: &dyn SessionStore, user: &str, text: &str) -> SearchPage {
    store
        .search(user, &SearchQuery::new(text))
        .await
        .expect("search")
}

async fn write(store: &dyn SessionStore, key: &SessionKey, texts: &[&str]) {
    let msgs: Vec<Message> = texts.iter().map(|t| Message::user(*t)).collect();
    store.append(key, &msgs, opts(3600)).await.expect("append");
}

#[tokio::test]
async fn an_sqlite_file_from_before_search_is_indexed_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let key = SessionKey::new("olga", "garden").unwrap();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        write(
            &store,
            &key,
            &["Tomatoes need staking", "Prune the roses in March"],
        )
        .await;
    }
    // Back to version 1: no index, no triggers.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER messages_search_insert; DROP TRIGGER messages_search_delete;
         DROP TABLE message_search; DROP TABLE message_search_ids;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).await.unwrap();
    let page = search(&store, "olga", "pruning roses").await;
    assert_eq!(page.hits.len(), 1, "{page:?}");
    assert_eq!(page.hits[0].seq, 2);
    write(&store, &key, &["More roses by the fence"]).await;
    assert_eq!(search(&store, "olga", "rose").await.hits.len(), 2);
    // Opening again indexes nothing twice.
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(search(&store, "olga", "rose").await.hits.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_search_is_indexed_by_the_migration() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    let url = server.create_database("before_search");
    let key = SessionKey::new("olga", "garden").unwrap();
    {
        let store = open_store(&url, &StoreOptions::default()).await.unwrap();
        write(
            store.as_ref(),
            &key,
            &["Tomatoes need staking", "Prune the roses"],
        )
        .await;
    }
    server.psql(
        "before_search",
        "ALTER TABLE ragchat_messages DROP COLUMN search_terms;
         DELETE FROM ragchat_schema WHERE version = 3;",
    );
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let page = search(store.as_ref(), "olga", "pruning roses").await;
    assert_eq!(page.hits.len(), 1, "{page:?}");
    assert_eq!(
        page.hits[0].snippet,
        "<mark>Prune</mark> the <mark>roses</mark>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_hits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn SessionStore> =
        Arc::new(SqliteStore::open(dir.path().join("r.db")).await.unwrap());
    let mut stores = vec![sqlite];
    let server = postgres_or_skip();
    if let Some(server) = &server {
        let url = server.create_database("retention_search");
        stores.push(open_store(&url, &StoreOptions::default()).await.unwrap());
    }
    for store in stores {
        let key = unique_key("old");
        write(store.as_ref(), &key, &["the quarterly invoice"]).await;
        assert_eq!(
            search(store.as_ref(), key.user(), "invoice")
                .await
                .hits
                .len(),
            1
        );
        let later = chrono::Utc::now().timestamp_millis() + 1000;
        let purged = store.purge_idle(later, 1000).await.unwrap();
        assert!(purged.contains(&key), "{}", store.describe());
        let page = search(store.as_ref(), key.user(), "invoice").await;
        assert!(page.hits.is_empty(), "{}: {page:?}", store.describe());
    }
}

/// An archiver that would not write for a long while: only the search's own step can
/// make the archive hold what was just appended.
fn slow_archiver() -> TierConfig {
    TierConfig {
        batch_delay: Duration::from_secs(30),
        sweep_every: None,
        ..config(3600)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_an_archive_finds_what_was_just_acknowledged() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let mut archives = vec![Archive::sqlite()];
    archives.extend(Archive::postgres("tier_search"));
    for archive in archives {
        redis.cli(&["FLUSHALL"]);
        let a = tiered(&redis, &archive, slow_archiver()).await;
        let b = tiered(&redis, &archive, config(3600)).await;
        let key = unique_key("fresh");
        write(a.as_ref(), &key, &["the wifi password is on the fridge"]).await;
        // A query that is not `fresh` (a turn's recall) writes nothing to the archive
        // first, and finds only what the archive holds.
        let mut stale = SearchQuery::new("wifi password");
        stale.fresh = false;
        let page = a.search(key.user(), &stale).await.expect("search");
        assert!(page.hits.is_empty(), "{}: {page:?}", a.describe());
        let page = search(a.as_ref(), key.user(), "wifi password").await;
        assert_eq!(page.hits.len(), 1, "{}: {page:?}", a.describe());
        assert_eq!(search(b.as_ref(), key.user(), "wifi").await.hits.len(), 1);

        // Appended on b, whose archiver writes within its batch delay: a finds it.
        let started = Instant::now();
        write(b.as_ref(), &key, &["the wifi router is in the attic"]).await;
        eventually(
            Duration::from_secs(10),
            "b's append found on a",
            async || search(a.as_ref(), key.user(), "wifi").await.hits.len() == 2,
        )
        .await;
        println!(
            "{}: found on the other server after {:?}",
            a.describe(),
            started.elapsed()
        );

        // Another user never; a delete, on either server, everywhere at once.
        assert!(search(b.as_ref(), "someone-else", "wifi")
            .await
            .hits
            .is_empty());
        assert!(a.delete(&key).await.unwrap());
        assert!(search(b.as_ref(), key.user(), "wifi").await.hits.is_empty());
        assert!(search(a.as_ref(), key.user(), "wifi").await.hits.is_empty());
    }
}

#[tokio::test]
async fn redis_alone_says_search_needs_a_durable_store() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let store = RedisStore::connect(&redis.url(), &StoreOptions::default())
        .await
        .unwrap();
    let err = store
        .search("alice", &SearchQuery::new("anything"))
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("--archive"), "{err}");
}
