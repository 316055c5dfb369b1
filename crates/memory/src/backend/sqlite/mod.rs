//! `sqlite://PATH`: the embedded durable default.
//!
//! One file in WAL mode, created on first use; every append is one transaction, so a
//! `kill -9` loses nothing that was acknowledged. Several processes may share the file
//! (SQLite serialises writers; `busy_timeout` waits for the lock).
//!
//! The TTL deletes nothing here (`ttl_remaining_secs` is always `None`): a
//! conversation stays until a person deletes it or retention ([`rows::purge_idle`],
//! by last activity) does. Files from versions that honoured the TTL are migrated in
//! place ([`schema`]).
//!
//! The file is private (created 0600 in a folder created 0700) and runs with
//! `secure_delete`, so deleted messages are overwritten rather than left in free pages;
//! a deleted session also empties the write-ahead log, which holds earlier copies of
//! the pages. Reads are paged ([`rows::read_range`]); the SQL lives in [`rows`].
//! Search is FTS5, kept by triggers in every write's transaction ([`schema`], [`search`]).

mod rows;
mod schema;
mod search;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, TransactionBehavior};

use self::rows::*;
use super::shared::{now_ms, report_corrupt, QuotaCheck};
use crate::error::{MemoryError, Result};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};
use crate::store::{
    AppendOptions, AppendOutcome, Durability, LoadedSession, SessionMeta, SessionPage,
    SessionStore, StoreKind, Ttl,
};

/// Sessions in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and its parent folder.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be created or opened.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| unavailable_msg("sqlite", e))?
    }

    fn open_blocking(path: PathBuf) -> Result<Self> {
        let describe = format!("sqlite://{}", path.display());
        crate::files::prepare_private_db(&path).map_err(|e| MemoryError::Unavailable {
            store: describe.clone(),
            reason: format!("cannot create {}: {e}", path.display()),
        })?;
        let mut conn = Connection::open(&path).map_err(|e| unavailable(&describe, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| unavailable(&describe, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| unavailable(&describe, e))?;
        // WAL + NORMAL is durable against process crashes (kill -9); FULL adds the OS crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| unavailable(&describe, e))?;
        // Deleted messages are overwritten, not left readable in free pages.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| unavailable(&describe, e))?;
        schema::prepare(&mut conn).map_err(|e| unavailable(&describe, e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn with_conn_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn).map_err(|e| self.error(e))
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with_conn_blocking(f))
            .await
            .map_err(|e| unavailable_msg(&self.describe(), e))?
    }

    fn error(&self, e: rusqlite::Error) -> MemoryError {
        let store = self.describe();
        match e {
            rusqlite::Error::SqliteFailure(code, _)
                if matches!(
                    code.code,
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::CannotOpen
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                ) =>
            {
                unavailable(&store, e)
            }
            other => MemoryError::Storage {
                store,
                reason: other.to_string(),
            },
        }
    }
}

fn unavailable(store: &str, e: impl std::fmt::Display) -> MemoryError {
    MemoryError::Unavailable {
        store: store.to_string(),
        reason: e.to_string(),
    }
}

fn unavailable_msg(store: &str, e: impl std::fmt::Display) -> MemoryError {
    unavailable(store, format!("background task failed: {e}"))
}

#[async_trait]
impl SessionStore for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    fn identity(&self) -> String {
        let path =
            std::fs::canonicalize(&self.inner.path).unwrap_or_else(|_| self.inner.path.clone());
        format!("sqlite://{}", path.display())
    }

    async fn create(&self, key: &SessionKey, _ttl: Ttl) -> Result<SessionMeta> {
        let key = key.clone();
        self.run(move |conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            ensure_session(&tx, &key, now)?;
            let meta = read_meta(&tx, &key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            tx.commit()?;
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
        let key = key.clone();
        let messages = messages.to_vec();
        let outcome = self
            .run(move |conn| {
                let now = now_ms();
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let existing = read_meta(&tx, &key)?;
                let adding = new_bytes(&tx, &key, &messages)?;
                let check = QuotaCheck {
                    quotas: opts.quotas,
                    creates_session: existing.is_none(),
                    session_bytes: existing.as_ref().map_or(0, |m| m.bytes),
                    adding,
                };
                let q = opts.quotas;
                let usage = if (q.user_sessions > 0 && existing.is_none())
                    || (q.user_bytes > 0 && adding > 0)
                {
                    user_usage(&tx, key.user())?
                } else {
                    (0, 0)
                };
                if let Err(e) = check.check(&key, || usage.0, || usage.1) {
                    return Ok(Err(e));
                }
                ensure_session(&tx, &key, now)?;
                let (mut last_seq, mut count, mut bytes, mut trimmed): (i64, i64, i64, i64) = tx.query_row(
                    "SELECT last_seq, message_count, bytes, trimmed_seq FROM sessions WHERE user = ?1 AND session = ?2",
                    params![key.user(), key.session()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )?;
                let mut seqs = Vec::with_capacity(messages.len());
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO messages (user, session, seq, id, role, content, sources, created_at, status)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (user, session, id) DO NOTHING",
                    )?;
                    for m in &messages {
                        let sources = m.sources_json();
                        let n = insert.execute(params![
                            key.user(),
                            key.session(),
                            last_seq + 1,
                            m.id.to_string(),
                            m.role.as_str(),
                            m.content,
                            sources,
                            m.created_at_millis(),
                            m.status.as_str(),
                        ])?;
                        if n == 1 {
                            last_seq += 1;
                            count += 1;
                            bytes += m.stored_bytes() as i64;
                            seqs.push(Some(last_seq as u64));
                        } else {
                            seqs.push(None);
                        }
                    }
                }
                if opts.max_messages > 0 && count as u64 > opts.max_messages {
                    let excess = count - opts.max_messages as i64;
                    let (cut_seq, cut_bytes): (i64, i64) = tx.query_row(
                        "SELECT max(seq), coalesce(sum(length(CAST(content AS BLOB)) + length(CAST(sources AS BLOB))), 0)
                           FROM (SELECT seq, content, sources FROM messages
                                  WHERE user = ?1 AND session = ?2 ORDER BY seq LIMIT ?3)",
                        params![key.user(), key.session(), excess],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?;
                    let removed = tx.execute(
                        "DELETE FROM messages WHERE user = ?1 AND session = ?2 AND seq <= ?3",
                        params![key.user(), key.session(), cut_seq],
                    )?;
                    count -= removed as i64;
                    bytes -= cut_bytes;
                    trimmed = cut_seq;
                }
                tx.execute(
                    "UPDATE sessions SET updated_at = ?3, message_count = ?4, bytes = ?5,
                            last_seq = ?6, trimmed_seq = ?7
                      WHERE user = ?1 AND session = ?2",
                    params![
                        key.user(),
                        key.session(),
                        now,
                        count,
                        bytes,
                        last_seq,
                        trimmed
                    ],
                )?;
                set_auto_title(&tx, &key, &messages)?;
                let meta = read_meta(&tx, &key)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                tx.commit()?;
                Ok(Ok(AppendOutcome {
                    seqs,
                    meta,
                    stamp: None,
                    repaired: false,
                }))
            })
            .await??;
        Ok(outcome)
    }

    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        _ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        let owned_key = key.clone();
        let loaded = self
            .run(move |conn| {
                let key = owned_key;
                // One snapshot for the meta and the entries.
                let tx = conn.transaction()?;
                let Some(meta) = read_meta(&tx, &key)? else {
                    return Ok(None);
                };
                let (messages, corrupt, more) = read_range(&tx, &key, from, limit)?;
                drop(tx.commit());
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
        let key = key.clone();
        self.run(move |conn| read_meta(&conn.transaction()?, &key))
            .await
    }

    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        let user = user.to_string();
        let after = after.cloned();
        self.run(move |conn| list_page(conn, &user, after.as_ref(), limit))
            .await
    }

    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let after = after.map(str::to_string);
        self.run(move |conn| user_page(conn, after.as_deref(), limit))
            .await
    }

    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        let key = key.clone();
        let title = title.map(str::to_string);
        self.run(move |conn| set_given_title(conn, &key, title.as_deref()))
            .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let key = key.clone();
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let existed = delete_session(&tx, &key)?;
            tx.commit()?;
            if existed {
                empty_the_log(conn)?;
            }
            Ok(existed)
        })
        .await
    }

    async fn purge_idle(&self, before_ms: i64, limit: usize) -> Result<Vec<SessionKey>> {
        self.run(move |conn| {
            let purged = purge_idle(conn, before_ms, limit.max(1))?;
            if !purged.is_empty() {
                empty_the_log(conn)?;
            }
            Ok(purged)
        })
        .await
    }

    fn searches(&self) -> bool {
        true
    }

    async fn search(&self, user: &str, query: &SearchQuery) -> Result<SearchPage> {
        let user = user.to_string();
        let query = query.clone();
        self.run(move |conn| search::search_page(conn, &user, &query))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.run(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn durability(&self) -> Durability {
        let read = self
            .run(|conn| {
                let journal_mode: String =
                    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                Ok((journal_mode, synchronous))
            })
            .await;
        match read {
            Ok((journal_mode, synchronous)) => Durability::Sqlite {
                journal_mode,
                synchronous,
            },
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the SQLite durability settings");
                Durability::Unknown
            }
        }
    }
}

/// Empties the write-ahead log after a delete: it still holds the pages as they were
/// before (`secure_delete` overwrites only the database file's pages).
fn empty_the_log(conn: &Connection) -> rusqlite::Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        tracing::debug!("another reader kept the SQLite log from being truncated");
    }
    Ok(())
}
