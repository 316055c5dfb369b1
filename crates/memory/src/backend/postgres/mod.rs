//! `postgres://` and `postgresql://`: a durable store shared by many servers, without
//! Redis.
//!
//! Sessions live in three tables keyed by user first ([`schema`]): `ragchat_sessions`
//! (one row per session: counters, seqs, titles), `ragchat_messages` (one row per
//! message, unique by id within its session, with its search terms: [`search`]) and `ragchat_usage` (each user's sessions
//! and bytes, for quotas). Every append is one transaction that locks the session's row
//! ([`write`]); reads are bounded ([`rows`]). The schema is created and migrated on first
//! use, safely when several processes start at once.
//!
//! The store is durable: the TTL deletes nothing here (`ttl_remaining_secs` is always
//! `None`); conversations stay until a person deletes them or retention does
//! ([`write::purge_idle`]: a batch of the sessions idle the longest, by last activity).
//!
//! Connections come from a bounded pool ([`connect::POOL_SIZE`]); every statement is
//! bounded by the server (`statement_timeout`, `lock_timeout` = the command timeout) and
//! every call by the client (connect + command timeouts), so a stopped or unreachable
//! server gives `Unavailable` quickly, which the manager's journal then covers.

mod connect;
mod rows;
mod schema;
mod search;
mod tls;
mod weights;
mod write;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use tokio::sync::OnceCell;

use super::shared::{now_ms, report_corrupt};
use crate::error::{MemoryError, Result};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};
use crate::spec::{redact_url, PostgresLocation, StoreOptions};
use crate::store::{
    AppendOptions, AppendOutcome, Durability, LoadedSession, SessionMeta, SessionPage,
    SessionStore, StoreKind, Ttl,
};

/// The longest one retention batch may take, server and client side. A batch deletes
/// whole conversations, which can take far longer than the command timeout that
/// bounds a chat turn's statements; it runs in the background, off any request.
const RETENTION_BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Sessions in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// The URL without credentials.
    describe: String,
    identity: String,
    /// The longest one call may take: a connection, then a statement.
    call_timeout: Duration,
    /// Set once the schema is known to be current.
    schema: OnceCell<()>,
    /// The search terms' statistics, read once a minute.
    weights: weights::Cache,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.inner.describe)
            .field("identity", &self.inner.identity)
            .finish()
    }
}

impl PostgresStore {
    /// Opens the store: connects and brings the schema up to date, unless
    /// `opts.lazy`, which leaves both to the first call.
    ///
    /// # Errors
    /// `InvalidInput` for settings the client refuses; `Unavailable` when the server
    /// cannot be reached; `Storage` when the schema cannot be prepared.
    pub async fn open(location: &PostgresLocation, opts: &StoreOptions) -> Result<Self> {
        let connected = connect::pool(location, opts)?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool: connected.pool,
                describe: redact_url(location.url()),
                identity: connected.identity,
                call_timeout: opts.connect_timeout + opts.command_timeout * 2,
                schema: OnceCell::new(),
                weights: weights::Cache::default(),
            }),
        };
        if !opts.lazy {
            store.bounded(store.ready()).await?;
        }
        Ok(store)
    }

    /// Opens the store at a `postgres://` URL (see [`PostgresStore::open`]).
    ///
    /// # Errors
    /// As [`PostgresStore::open`], and `InvalidInput` for a malformed URL.
    pub async fn open_url(url: &str, opts: &StoreOptions) -> Result<Self> {
        Self::open(&PostgresLocation::parse(url)?, opts).await
    }

    /// The schema version this binary brings databases to.
    pub fn schema_version() -> i32 {
        schema::MIGRATIONS.last().map_or(0, |(v, _)| *v)
    }

    /// Migrates the schema once per store (later calls return at once).
    async fn ready(&self) -> Result<()> {
        self.inner
            .schema
            .get_or_try_init(|| async {
                let mut client = self.raw_client().await?;
                let done = schema::migrate(&mut client).await.map_err(|e| match e {
                    schema::SchemaError::Db(e) => self.error(&e),
                    schema::SchemaError::TooNew { found, known } => MemoryError::Storage {
                        store: self.describe(),
                        reason: format!(
                            "the database's schema is version {found}, newer than this \
                             ragchat knows ({known}); upgrade ragchat"
                        ),
                    },
                })?;
                if done.applied > 0 {
                    tracing::info!(store = %self.describe(), version = done.version, applied = done.applied, "migrated the PostgreSQL schema");
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    async fn raw_client(&self) -> Result<Object> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| connect::classify_pool(&self.describe(), e))
    }

    /// A pooled connection to a database whose schema is current.
    async fn client(&self) -> Result<Object> {
        self.ready().await?;
        self.raw_client().await
    }

    fn error(&self, e: &tokio_postgres::Error) -> MemoryError {
        connect::classify(&self.describe(), e)
    }

    /// Runs `call` within the call timeout; past it, `Unavailable`.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        self.bounded_by(self.inner.call_timeout, call).await
    }

    /// Runs `call` within `limit`; past it, `Unavailable`.
    async fn bounded_by<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(limit, call).await {
            Ok(result) => result,
            Err(_) => Err(MemoryError::Unavailable {
                store: self.describe(),
                reason: format!("no answer within {limit:?}"),
            }),
        }
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    fn describe(&self) -> String {
        self.inner.describe.clone()
    }

    fn identity(&self) -> String {
        self.inner.identity.clone()
    }

    async fn create(&self, key: &SessionKey, _ttl: Ttl) -> Result<SessionMeta> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.error(&e))?;
            let meta = write::create(&tx, key, now_ms())
                .await
                .map_err(|e| self.error(&e))?;
            tx.commit().await.map_err(|e| self.error(&e))?;
            Ok(meta)
        })
        .await
    }

    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.error(&e))?;
            let outcome = write::append(&tx, key, messages, opts, now_ms())
                .await
                .map_err(|e| self.error(&e))?;
            // A refusal drops the transaction: it rolls back, nothing is written.
            let outcome = outcome?;
            tx.commit().await.map_err(|e| self.error(&e))?;
            Ok(outcome)
        })
        .await
    }

    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        _ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        let loaded = self
            .bounded(async {
                let mut client = self.client().await?;
                // One snapshot for the meta and the entries.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(|e| self.error(&e))?;
                let Some(meta) = rows::read_meta(&tx, key, false)
                    .await
                    .map_err(|e| self.error(&e))?
                else {
                    return Ok(None);
                };
                let (messages, corrupt, more) = rows::read_range(&tx, key, from, limit)
                    .await
                    .map_err(|e| self.error(&e))?;
                tx.commit().await.map_err(|e| self.error(&e))?;
                Ok(Some(LoadedSession {
                    meta,
                    messages,
                    corrupt,
                    stamp: None,
                    more,
                    repaired: false,
                }))
            })
            .await?;
        if let Some(loaded) = &loaded {
            report_corrupt(&self.describe(), key, &loaded.corrupt);
        }
        Ok(loaded)
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        self.bounded(async {
            let client = self.client().await?;
            rows::read_meta(&client, key, false)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        self.bounded(async {
            let client = self.client().await?;
            rows::list_page(&client, user, after, limit)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.bounded(async {
            let client = self.client().await?;
            rows::user_page(&client, after, limit)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        self.bounded(async {
            let client = self.client().await?;
            write::set_title(&client, key, title)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.bounded(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.error(&e))?;
            let existed = write::delete(&tx, key).await.map_err(|e| self.error(&e))?;
            tx.commit().await.map_err(|e| self.error(&e))?;
            Ok(existed)
        })
        .await
    }

    async fn purge_idle(&self, before_ms: i64, limit: usize) -> Result<Vec<SessionKey>> {
        let limit = limit.clamp(1, i64::MAX as usize) as i64;
        let call = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.error(&e))?;
            let timeout = format!(
                "SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}",
                ms = RETENTION_BATCH_TIMEOUT.as_millis()
            );
            tx.batch_execute(&timeout)
                .await
                .map_err(|e| self.error(&e))?;
            let purged = write::purge_idle(&tx, before_ms, limit)
                .await
                .map_err(|e| self.error(&e))?;
            tx.commit().await.map_err(|e| self.error(&e))?;
            Ok(purged)
        };
        let purged = self
            .bounded_by(RETENTION_BATCH_TIMEOUT + self.inner.call_timeout, call)
            .await?;
        // Keys are validated when written; one that no longer parses is gone all the same.
        Ok(purged
            .into_iter()
            .filter_map(|(user, session)| SessionKey::new(user, session).ok())
            .collect())
    }

    fn searches(&self) -> bool {
        true
    }

    async fn search(&self, user: &str, query: &SearchQuery) -> Result<SearchPage> {
        self.bounded(async {
            let client = self.client().await?;
            search::search_page(&client, &self.inner.weights, user, query)
                .await
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.bounded(async {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(|e| self.error(&e))
        })
        .await
    }

    async fn warnings(&self) -> Vec<String> {
        match self.durability().await {
            Durability::Postgres { fsync, .. } if fsync == "off" => vec![format!(
                "PostgreSQL at {} runs with fsync=off: a server crash can lose or corrupt conversations",
                self.inner.identity
            )],
            _ => Vec::new(),
        }
    }

    async fn durability(&self) -> Durability {
        let read = self
            .bounded(async {
                let client = self.raw_client().await?;
                let row = client
                    .query_one(
                        "SELECT current_setting('synchronous_commit'), current_setting('fsync')",
                        &[],
                    )
                    .await
                    .map_err(|e| self.error(&e))?;
                Ok((row.get::<_, String>(0), row.get::<_, String>(1)))
            })
            .await;
        match read {
            Ok((synchronous_commit, fsync)) => Durability::Postgres {
                synchronous_commit,
                fsync,
            },
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the PostgreSQL durability settings");
                Durability::Unknown
            }
        }
    }
}
