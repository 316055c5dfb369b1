//! The conformance suite on `postgres://` (a private PostgreSQL from the testkit, a
//! fresh database per test), plus what only PostgreSQL has: migrations racing, two
//! servers appending to the same sessions, outages, TLS settings, redaction.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ragchat_memory::backend::postgres::PostgresStore;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::testing::{self, StoreFixture};
use ragchat_memory::{
    open_store, Durability, MemoryError, Message, Quotas, ReadFrom, ReadLimit, SessionKey,
    SessionStore, StoreKind, StoreOptions, Ttl,
};
use ragchat_testkit::{postgres_or_skip, PostgresServer};

struct Fixture<'a> {
    server: &'a PostgresServer,
    database: String,
    url: String,
}

#[async_trait]
impl StoreFixture for Fixture<'_> {
    async fn open(&self) -> Arc<dyn SessionStore> {
        open_store(&self.url, &StoreOptions::default())
            .await
            .expect("open postgres")
    }

    async fn plant_corrupt(&self, key: &SessionKey) -> bool {
        self.server.psql(
            &self.database,
            &format!(
                "INSERT INTO ragchat_messages
                     (user_id, session_id, seq, id, role, content, sources, created_at, status, bytes)
                 SELECT user_id, session_id, last_seq + 1, 'not-a-uuid', 'robot', 'x', '{{bad', 0,
                        'complete', 1
                   FROM ragchat_sessions WHERE user_id = '{}' AND session_id = '{}';
                 UPDATE ragchat_sessions SET last_seq = last_seq + 1, message_count = message_count + 1
                  WHERE user_id = '{}' AND session_id = '{}';",
                key.user(),
                key.session(),
                key.user(),
                key.session()
            ),
        );
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

fn opts() -> AppendOptions {
    AppendOptions {
        ttl: Ttl::secs(60),
        max_messages: 0,
        refresh_ttl: true,
        quotas: Quotas::UNBOUNDED,
    }
}

const ALL: ReadLimit = ReadLimit::new(usize::MAX, u64::MAX);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    let url = server.create_database("conformance");
    let fixture = Fixture {
        server: &server,
        database: "conformance".into(),
        url,
    };
    testing::run_all(&fixture).await;
    let store = fixture.open().await;
    assert_eq!(store.kind(), StoreKind::Postgres);
    assert!(matches!(
        store.durability().await,
        Durability::Postgres { ref fsync, .. } if fsync == "off"
    ));
    assert_eq!(store.warnings().await.len(), 1, "fsync=off is a risk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_the_schema_once() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    let url = server.create_database("racing");
    let options = StoreOptions::default();
    let opened =
        futures::future::join_all((0..4).map(|_| PostgresStore::open_url(&url, &options))).await;
    for store in &opened {
        assert!(store.is_ok(), "{store:?}");
    }
    let versions = server.psql(
        "racing",
        "SELECT count(*), max(version) FROM ragchat_schema",
    );
    // Versions are numbered from 1 without gaps: one row per version, each once.
    let newest = PostgresStore::schema_version();
    assert_eq!(
        versions.trim(),
        format!("{newest}|{newest}"),
        "applied once"
    );
    // Opening again applies nothing and still works.
    let again = PostgresStore::open_url(&url, &StoreOptions::default())
        .await
        .unwrap();
    again.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_appending_to_the_same_sessions_keep_exact_counts() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    let url = server.create_database("shared");
    // Two stores with their own pools: two app servers.
    let a = Arc::new(
        PostgresStore::open_url(&url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let b = Arc::new(
        PostgresStore::open_url(&url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let keys: Vec<SessionKey> = (0..3)
        .map(|i| SessionKey::new("shared-user", format!("s{i}")).unwrap())
        .collect();
    let per_task = 30;
    let mut tasks = Vec::new();
    for t in 0..6 {
        let (mine, other) = if t % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let (mine, other) = (mine.clone(), other.clone());
        let keys = keys.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let key = &keys[i % keys.len()];
                let m = [Message::user(format!("task {t} msg {i}"))];
                mine.append(key, &m, opts()).await.expect("append");
                // The other server retries the same message: stored once.
                let again = other.append(key, &m, opts()).await.expect("replay");
                assert_eq!(again.stored(), 0);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut total = 0;
    for key in &keys {
        let loaded = a
            .load(key, ReadFrom::After(0), ALL, Ttl::NEVER)
            .await
            .unwrap()
            .unwrap();
        let seqs: Vec<u64> = loaded.messages.iter().map(|(s, _)| *s).collect();
        let want: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, want, "consecutive, no gaps, no doubles");
        assert_eq!(loaded.meta.message_count, seqs.len() as u64);
        assert_eq!(loaded.meta.last_seq, seqs.len() as u64);
        let bytes: u64 = loaded.messages.iter().map(|(_, m)| m.stored_bytes()).sum();
        assert_eq!(loaded.meta.bytes, bytes);
        total += seqs.len();
    }
    assert_eq!(total, 6 * per_task);
    let usage = server.psql(
        "shared",
        "SELECT u.sessions, u.bytes = (SELECT sum(bytes) FROM ragchat_sessions s WHERE s.user_id = u.user_id)
           FROM ragchat_usage u WHERE user_id = 'shared-user'",
    );
    assert_eq!(usage.trim(), "3|t", "usage matches the sessions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_everything_and_outages_are_unavailable_quickly() {
    let Some(mut server) = postgres_or_skip() else {
        return;
    };
    let url = server.create_database("outage");
    let quick = StoreOptions {
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let store = open_store(&url, &quick).await.unwrap();
    let key = SessionKey::new("olga", "kept").unwrap();
    store
        .append(&key, &[Message::user("before the crash")], opts())
        .await
        .unwrap();

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store
            .append(&key, &[Message::user("while down")], opts())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert!(store.ping().await.unwrap_err().is_retryable());
    }
    // A store opened lazily while the server is down is not an error until used.
    let lazy = StoreOptions {
        lazy: true,
        ..quick.clone()
    };
    let later = open_store(&url, &lazy).await.unwrap();
    assert!(later.meta(&key).await.unwrap_err().is_retryable());

    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store
            .append(&key, &[Message::user("after the crash")], opts())
            .await
        {
            Ok(out) => {
                assert_eq!(out.meta.message_count, 2);
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(Instant::now() < deadline, "never came back: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let reopened = open_store(&url, &quick).await.unwrap();
    let loaded = reopened
        .load(&key, ReadFrom::After(0), ALL, Ttl::NEVER)
        .await
        .unwrap()
        .unwrap();
    let texts: Vec<&str> = loaded
        .messages
        .iter()
        .map(|(_, m)| m.content.as_str())
        .collect();
    assert_eq!(texts, ["before the crash", "after the crash"]);
    assert_eq!(later.meta(&key).await.unwrap().unwrap().message_count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_never_shown_and_tls_is_refused_clearly() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    server.create_database("secret");
    let port = server.port();
    // The test server trusts local connections: the password is sent, never checked.
    let url = format!("postgres://postgres:s3cretpw@127.0.0.1:{port}/secret");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    for shown in [store.describe(), store.identity(), format!("{store:?}")] {
        assert!(!shown.contains("s3cretpw"), "{shown}");
    }
    assert_eq!(
        store.identity(),
        format!("postgres://127.0.0.1:{port}/secret")
    );

    let url = format!("postgres://postgres:s3cretpw@127.0.0.1:{port}/secret?sslmode=require");
    let err = open_store(&url, &StoreOptions::default())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(err.is_retryable(), "{text}");
    assert!(text.contains("TLS"), "{text}");
    assert!(!text.contains("s3cretpw"), "{text}");
    // `prefer` falls back to plain TCP on a server without TLS.
    let url = format!("postgres://postgres:s3cretpw@127.0.0.1:{port}/secret?sslmode=prefer");
    open_store(&url, &StoreOptions::default()).await.unwrap();

    let closed = ragchat_testkit::free_port();
    let url = format!("postgresql://postgres:s3cretpw@127.0.0.1:{closed}/x");
    let err = open_store(&url, &StoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MemoryError::Unavailable { .. }), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cretpw"), "{err:?}");
}
