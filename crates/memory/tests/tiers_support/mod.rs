//! What the tier tests share: a Redis from the harness with an archive behind it
//! (an SQLite file in a temp dir, or a database on a harness PostgreSQL), and ways to
//! look at both tiers directly.
#![allow(dead_code)] // each test file uses its own share of these

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::tier::{TierConfig, TieredStore};
use ragchat_memory::{
    open_store, ReadFrom, ReadLimit, SessionKey, SessionStore, StoreOptions, Ttl,
};
use ragchat_testkit::{PostgresServer, RedisServer};

/// Append options for tests: TTL `ttl` s, no trimming, no quotas.
pub(crate) fn opts(ttl: u64) -> ragchat_memory::store::AppendOptions {
    ragchat_memory::store::AppendOptions {
        ttl: Ttl::secs(ttl),
        max_messages: 0,
        refresh_ttl: true,
        quotas: ragchat_memory::Quotas::UNBOUNDED,
    }
}

/// Turn `i`: a question and its answer (new message ids every call).
pub(crate) fn turn(i: usize) -> Vec<ragchat_memory::Message> {
    use ragchat_memory::{Message, Role};
    vec![
        Message::new(Role::User, format!("question {i}")),
        Message::new(Role::Assistant, format!("answer {i}")),
    ]
}

/// The durable store behind Redis in one test.
pub(crate) enum Archive {
    Sqlite(tempfile::TempDir),
    Postgres(PostgresServer, String),
}

impl Archive {
    pub(crate) fn sqlite() -> Archive {
        Archive::Sqlite(tempfile::tempdir().expect("temp dir"))
    }

    /// `None` (and a note) when PostgreSQL is not installed, outside CI.
    pub(crate) fn postgres(database: &str) -> Option<Archive> {
        let server = ragchat_testkit::postgres_or_skip()?;
        let url = server.create_database(database);
        Some(Archive::Postgres(server, url))
    }

    pub(crate) fn url(&self) -> String {
        match self {
            Archive::Sqlite(dir) => format!("sqlite://{}", dir.path().join("archive.db").display()),
            Archive::Postgres(_, url) => url.clone(),
        }
    }

    pub(crate) fn postgres_server(&mut self) -> &mut PostgresServer {
        match self {
            Archive::Postgres(server, _) => server,
            Archive::Sqlite(_) => panic!("not a PostgreSQL archive"),
        }
    }

    /// A direct handle on the archive (a store of its own).
    pub(crate) async fn open(&self) -> Arc<dyn SessionStore> {
        open_store(&self.url(), &StoreOptions::default())
            .await
            .expect("open the archive directly")
    }
}

/// A tier config for tests: TTL `ttl_secs`, quick rounds and sweeps.
pub(crate) fn config(ttl_secs: u64) -> TierConfig {
    TierConfig {
        ttl: Ttl::secs(ttl_secs),
        batch_delay: Duration::from_millis(5),
        sweep_every: Some(Duration::from_millis(200)),
        lock: Duration::from_secs(2),
        retry_after: Duration::from_millis(200),
        ..TierConfig::default()
    }
}

/// A new "server": its own Redis connection, archive connection and archiver.
pub(crate) async fn tiered(
    redis: &RedisServer,
    archive: &Archive,
    config: TierConfig,
) -> Arc<TieredStore> {
    let opts = StoreOptions::default();
    let hot = RedisStore::connect(&redis.url(), &opts)
        .await
        .expect("redis");
    let back = open_store(&archive.url(), &opts).await.expect("archive");
    Arc::new(TieredStore::new(hot, back, config).expect("tiered store"))
}

/// Every message id the archive holds for `key`, with how many times.
pub(crate) async fn archived_ids(
    archive: &dyn SessionStore,
    key: &SessionKey,
) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    let mut after = 0;
    loop {
        let Some(page) = archive
            .load(
                key,
                ReadFrom::After(after),
                ReadLimit::new(500, 1 << 24),
                Ttl::NEVER,
            )
            .await
            .expect("read the archive")
        else {
            return ids;
        };
        for (seq, m) in &page.messages {
            *ids.entry(m.id.to_string()).or_default() += 1;
            after = after.max(*seq);
        }
        if !page.more || page.messages.is_empty() {
            return ids;
        }
    }
}

/// Keys Redis holds for `user`.
pub(crate) fn redis_keys(redis: &RedisServer, user: &str) -> Vec<String> {
    let out = redis.cli(&["--scan", "--pattern", &format!("*{{{user}}}*")]);
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Polls `check` until it holds, for at most `within`.
pub(crate) async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
