//! `sqlite://PATH`: the embedded durable default.
//!
//! One file in WAL mode, created on first use; every append is one transaction, so a
//! `kill -9` loses nothing that was acknowledged. Several processes may share the file
//! (SQLite serialises writers; `busy_timeout` waits for the lock). The TTL is honoured
//! like Redis's: each session carries `expires_at`, expired sessions are invisible at
//! once and purged lazily.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{now_ms, remaining_secs};
use crate::error::{MemoryError, Result};
use crate::message::{millis_to_datetime, Message, SessionKey, SourceRef};
use crate::store::{
    AppendOptions, AppendOutcome, CorruptEntry, LoadedSession, SessionMeta, SessionStore,
    SessionSummary, StoreKind, Ttl,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
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
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS messages (
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
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (user, session, id);
";

/// How often appends also sweep every expired session out of the file.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Sessions in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    last_purge_ms: Mutex<i64>,
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
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| MemoryError::Unavailable {
                store: describe.clone(),
                reason: format!("cannot create {}: {e}", parent.display()),
            })?;
        }
        let conn = Connection::open(&path).map_err(|e| unavailable(&describe, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| unavailable(&describe, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| unavailable(&describe, e))?;
        // WAL + NORMAL is durable against process crashes (kill -9); FULL adds the OS crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| unavailable(&describe, e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| unavailable(&describe, e))?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path,
                conn: Mutex::new(conn),
                last_purge_ms: Mutex::new(0),
            }),
        };
        store.with_conn_blocking(|conn| purge_expired(conn, now_ms()).map(|_| ()))?;
        Ok(store)
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

/// Deletes every expired session; returns how many.
fn purge_expired(conn: &mut Connection, now: i64) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM messages WHERE (user, session) IN
           (SELECT user, session FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?1)",
        params![now],
    )?;
    let n = tx.execute(
        "DELETE FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?1",
        params![now],
    )?;
    tx.commit()?;
    Ok(n)
}

/// Drops one session if it has expired, so that callers only ever see live ones.
fn purge_if_expired(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> rusqlite::Result<()> {
    let expired = is_expired_row(tx, key, now)?;
    if expired {
        delete_session(tx, key)?;
    }
    Ok(())
}

fn delete_session(tx: &rusqlite::Transaction<'_>, key: &SessionKey) -> rusqlite::Result<bool> {
    tx.execute(
        "DELETE FROM messages WHERE user = ?1 AND session = ?2",
        params![key.user(), key.session()],
    )?;
    let n = tx.execute(
        "DELETE FROM sessions WHERE user = ?1 AND session = ?2",
        params![key.user(), key.session()],
    )?;
    Ok(n > 0)
}

fn read_meta(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> rusqlite::Result<Option<SessionMeta>> {
    tx.query_row(
        "SELECT message_count, bytes, created_at, updated_at, last_seq, trimmed_seq, expires_at
           FROM sessions WHERE user = ?1 AND session = ?2",
        params![key.user(), key.session()],
        |r| {
            Ok(SessionMeta {
                message_count: r.get::<_, i64>(0)? as u64,
                bytes: r.get::<_, i64>(1)? as u64,
                created_at_ms: r.get(2)?,
                updated_at_ms: r.get(3)?,
                last_seq: r.get::<_, i64>(4)? as u64,
                trimmed_seq: r.get::<_, i64>(5)? as u64,
                ttl_remaining_secs: remaining_secs(r.get(6)?, now),
            })
        },
    )
    .optional()
}

fn set_expiry(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    ttl: Ttl,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE sessions SET expires_at = ?3 WHERE user = ?1 AND session = ?2",
        params![key.user(), key.session(), ttl.expires_at_ms(now)],
    )?;
    Ok(())
}

fn ensure_session(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sessions (user, session, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (user, session) DO NOTHING",
        params![key.user(), key.session(), now],
    )?;
    Ok(())
}

/// Decodes one row of `messages`; a bad row becomes a `CorruptEntry`, never an error.
fn decode_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<std::result::Result<(u64, Message), CorruptEntry>> {
    let seq: i64 = row.get(0)?;
    let seq = seq as u64;
    let corrupt = |reason: String| CorruptEntry {
        seq: Some(seq),
        reason,
    };
    let text = |i: usize, name: &str| -> std::result::Result<String, CorruptEntry> {
        match row.get_ref(i) {
            Ok(v) => match Value::from(v) {
                Value::Text(s) => Ok(s),
                other => Err(corrupt(format!(
                    "{name} is not text ({:?})",
                    other.data_type()
                ))),
            },
            Err(e) => Err(corrupt(format!("{name}: {e}"))),
        }
    };
    let decoded = (|| {
        let id = text(1, "id")?
            .parse()
            .map_err(|e| corrupt(format!("{e}")))?;
        let role = text(2, "role")?
            .parse()
            .map_err(|e| corrupt(format!("{e}")))?;
        let content = text(3, "content")?;
        let sources_json = text(4, "sources")?;
        let sources: Vec<SourceRef> = if sources_json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&sources_json)
                .map_err(|e| corrupt(format!("sources are not valid JSON: {e}")))?
        };
        let created_at: i64 = row
            .get(5)
            .map_err(|e| corrupt(format!("created_at: {e}")))?;
        let status = text(6, "status")?
            .parse()
            .map_err(|e| corrupt(format!("{e}")))?;
        Ok((
            seq,
            Message {
                id,
                role,
                content,
                sources,
                created_at: millis_to_datetime(created_at),
                status,
            },
        ))
    })();
    Ok(decoded)
}

#[async_trait]
impl SessionStore for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn describe(&self) -> String {
        format!("sqlite://{}", self.inner.path.display())
    }

    async fn create(&self, key: &SessionKey, ttl: Ttl) -> Result<SessionMeta> {
        let key = key.clone();
        self.run(move |conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            purge_if_expired(&tx, &key, now)?;
            ensure_session(&tx, &key, now)?;
            set_expiry(&tx, &key, ttl, now)?;
            let meta = read_meta(&tx, &key, now)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
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
                purge_if_expired(&tx, &key, now)?;
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
                    "UPDATE sessions SET updated_at = ?3, expires_at = ?4, message_count = ?5, bytes = ?6,
                            last_seq = ?7, trimmed_seq = ?8
                      WHERE user = ?1 AND session = ?2",
                    params![
                        key.user(),
                        key.session(),
                        now,
                        opts.ttl.expires_at_ms(now),
                        count,
                        bytes,
                        last_seq,
                        trimmed
                    ],
                )?;
                let meta = read_meta(&tx, &key, now)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                tx.commit()?;
                Ok(AppendOutcome {
                    seqs,
                    meta,
                    stamp: None,
                })
            })
            .await?;
        self.maybe_purge().await;
        Ok(outcome)
    }

    async fn load(
        &self,
        key: &SessionKey,
        after_seq: u64,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        let owned_key = key.clone();
        let loaded = self
            .run(move |conn| {
                let key = owned_key;
                let now = now_ms();
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                purge_if_expired(&tx, &key, now)?;
                set_expiry(&tx, &key, ttl, now)?;
                let Some(meta) = read_meta(&tx, &key, now)? else {
                    return Ok(None);
                };
                let mut messages = Vec::new();
                let mut corrupt = Vec::new();
                if meta.last_seq > after_seq {
                    let mut stmt = tx.prepare_cached(
                        "SELECT seq, id, role, content, sources, created_at, status FROM messages
                          WHERE user = ?1 AND session = ?2 AND seq > ?3 ORDER BY seq",
                    )?;
                    let mut rows =
                        stmt.query(params![key.user(), key.session(), after_seq as i64])?;
                    while let Some(row) = rows.next()? {
                        match decode_row(row)? {
                            Ok(entry) => messages.push(entry),
                            Err(bad) => corrupt.push(bad),
                        }
                    }
                }
                drop(tx.commit());
                Ok(Some(LoadedSession {
                    meta,
                    messages,
                    corrupt,
                    stamp: None,
                }))
            })
            .await?;
        if let Some(loaded) = &loaded {
            for bad in &loaded.corrupt {
                tracing::warn!(store = %self.describe(), session = %key, seq = ?bad.seq, reason = %bad.reason, "skipped a corrupt stored message");
            }
        }
        Ok(loaded)
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        let key = key.clone();
        self.run(move |conn| {
            let now = now_ms();
            let tx = conn.transaction()?;
            let meta = read_meta(&tx, &key, now)?;
            Ok(meta.filter(|_| !is_expired_row(&tx, &key, now).unwrap_or(false)))
        })
        .await
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionSummary>> {
        let user = user.to_string();
        self.run(move |conn| {
            let now = now_ms();
            let mut stmt = conn.prepare_cached(
                "SELECT session, message_count, bytes, created_at, updated_at, expires_at FROM sessions
                  WHERE user = ?1 AND (expires_at IS NULL OR expires_at > ?2)
                  ORDER BY updated_at DESC, session",
            )?;
            let rows = stmt.query_map(params![user, now], |r| {
                Ok(SessionSummary {
                    session: r.get(0)?,
                    message_count: r.get::<_, i64>(1)? as u64,
                    bytes: r.get::<_, i64>(2)? as u64,
                    created_at: millis_to_datetime(r.get(3)?),
                    updated_at: millis_to_datetime(r.get(4)?),
                    ttl_remaining_secs: remaining_secs(r.get(5)?, now),
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let key = key.clone();
        self.run(move |conn| {
            let now = now_ms();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let was_live = !is_expired_row(&tx, &key, now)?;
            let existed = delete_session(&tx, &key)?;
            tx.commit()?;
            Ok(existed && was_live)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.run(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }
}

fn is_expired_row(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(tx
        .query_row(
            "SELECT expires_at IS NOT NULL AND expires_at <= ?3 FROM sessions WHERE user = ?1 AND session = ?2",
            params![key.user(), key.session(), now],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false))
}

impl SqliteStore {
    /// Sweeps expired sessions at most once per `PURGE_EVERY`; failures only log.
    async fn maybe_purge(&self) {
        let now = now_ms();
        {
            let mut last = self
                .inner
                .last_purge_ms
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if now - *last < PURGE_EVERY.as_millis() as i64 {
                return;
            }
            *last = now;
        }
        match self.run(move |conn| purge_expired(conn, now)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(store = %self.describe(), purged = n, "purged expired sessions")
            }
            Err(e) => {
                tracing::warn!(store = %self.describe(), error = %e, "purging expired sessions failed")
            }
        }
    }
}
