//! The local journal: where appends go while the shared store is unreachable.
//!
//! An SQLite file in the data dir (WAL, `synchronous=FULL`), one transaction per
//! append, so an append acknowledged from the journal survives `kill -9` and power
//! loss. Entries leave the journal only after the store has acknowledged them; a
//! replay that repeats entries is harmless because store appends are idempotent by
//! message id. The journal is bounded by bytes: when full, appends fail with
//! `Unavailable` instead of dropping anything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{MemoryError, Result};
use crate::message::{Message, SessionKey};

/// Default journal bound: 1 GiB.
pub const DEFAULT_JOURNAL_MAX_BYTES: u64 = 1024 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    user         TEXT    NOT NULL,
    session      TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    journaled_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_session ON journal (user, session, seq);
-- Running total of journal.bytes, kept by triggers so that the size check of an
-- append costs the same however full the journal is.
CREATE TABLE IF NOT EXISTS journal_size (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    entries INTEGER NOT NULL,
    bytes   INTEGER NOT NULL
);
INSERT OR IGNORE INTO journal_size (id, entries, bytes)
    SELECT 1, count(*), coalesce(sum(bytes), 0) FROM journal;
CREATE TRIGGER IF NOT EXISTS journal_size_add AFTER INSERT ON journal
    BEGIN UPDATE journal_size SET entries = entries + 1, bytes = bytes + NEW.bytes WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS journal_size_remove AFTER DELETE ON journal
    BEGIN UPDATE journal_size SET entries = entries - 1, bytes = bytes - OLD.bytes WHERE id = 1; END;
CREATE TABLE IF NOT EXISTS journal_rejects (
    seq     INTEGER PRIMARY KEY,
    user    TEXT,
    session TEXT,
    message TEXT,
    reason  TEXT NOT NULL
);
";

/// Where the journal lives and how big it may grow.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// The SQLite file.
    pub path: PathBuf,
    /// Most bytes of messages it may hold.
    pub max_bytes: u64,
}

/// One pending entry.
#[derive(Clone, Debug)]
pub struct JournalEntry {
    /// Position in the journal.
    pub seq: i64,
    /// The message as it was acknowledged.
    pub message: Message,
}

/// What the journal holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Pending messages.
    pub entries: u64,
    /// Their bytes.
    pub bytes: u64,
    /// When the oldest was journaled (ms since the epoch).
    pub oldest_ms: Option<i64>,
}

/// The journal file. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: JournalConfig,
    conn: Mutex<Connection>,
}

impl Journal {
    /// Opens (creating if needed) the journal file and its folder.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be created or opened.
    pub fn open(config: JournalConfig) -> Result<Self> {
        let describe = format!("journal {}", config.path.display());
        let fail = |e: &dyn std::fmt::Display| MemoryError::Unavailable {
            store: describe.clone(),
            reason: e.to_string(),
        };
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| fail(&e))?;
        }
        let conn = Connection::open(&config.path).map_err(|e| fail(&e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| fail(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| fail(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| fail(&e))?;
        Ok(Journal {
            inner: Arc::new(Inner {
                config,
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    fn describe(&self) -> String {
        format!("journal {}", self.inner.config.path.display())
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &JournalConfig) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let describe = self.describe();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn, &inner.config)
        })
        .await
        .map_err(|e| MemoryError::Unavailable {
            store: describe,
            reason: format!("background task failed: {e}"),
        })?
    }

    fn sql_error(describe: &str, e: rusqlite::Error) -> MemoryError {
        MemoryError::Unavailable {
            store: describe.to_string(),
            reason: e.to_string(),
        }
    }

    /// Durably records messages for `key`, all or none.
    ///
    /// # Errors
    /// `Unavailable` when the journal is full (nothing is written) or cannot be written.
    pub async fn append(&self, key: &SessionKey, messages: &[Message]) -> Result<()> {
        let key = key.clone();
        let encoded: Vec<(String, u64)> = messages
            .iter()
            .map(|m| {
                let json =
                    serde_json::to_string(m).map_err(|e| MemoryError::Corrupt(e.to_string()))?;
                let bytes = json.len() as u64;
                Ok((json, bytes))
            })
            .collect::<Result<_>>()?;
        let describe = self.describe();
        self.run(move |conn, config| {
            let err = |e| Self::sql_error(&describe, e);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
            let used: i64 = tx
                .query_row("SELECT bytes FROM journal_size WHERE id = 1", [], |r| r.get(0))
                .map_err(err)?;
            let adding: u64 = encoded.iter().map(|(_, b)| b).sum();
            if used as u64 + adding > config.max_bytes {
                return Err(MemoryError::Unavailable {
                    store: describe.clone(),
                    reason: format!(
                        "the store is unreachable and the local journal is full ({} of {} bytes used); the message was not stored",
                        used, config.max_bytes
                    ),
                });
            }
            let now = chrono::Utc::now().timestamp_millis();
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO journal (user, session, message, bytes, journaled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(err)?;
                for (json, bytes) in &encoded {
                    insert
                        .execute(params![key.user(), key.session(), json, *bytes as i64, now])
                        .map_err(err)?;
                }
            }
            tx.commit().map_err(err)
        })
        .await
    }

    /// Sessions with pending entries and how many, oldest pending first.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn pending_sessions(&self) -> Result<Vec<(SessionKey, u64)>> {
        let describe = self.describe();
        self.run(move |conn, _| Self::query_pending(conn, &describe))
            .await
    }

    /// [`Journal::pending_sessions`] on the calling thread (for startup).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub fn pending_sessions_blocking(&self) -> Result<Vec<(SessionKey, u64)>> {
        let conn = self.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
        Self::query_pending(&conn, &self.describe())
    }

    fn query_pending(conn: &Connection, describe: &str) -> Result<Vec<(SessionKey, u64)>> {
        let err = |e| Self::sql_error(describe, e);
        let mut stmt = conn
            .prepare_cached(
                "SELECT user, session, count(*), min(seq) AS first FROM journal GROUP BY user, session ORDER BY first",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (user, session, n) = row.map_err(err)?;
            match SessionKey::new(user.as_str(), session.as_str()) {
                Ok(key) => out.push((key, n as u64)),
                Err(e) => {
                    tracing::warn!(%user, %session, error = %e, "journal holds an invalid session key")
                }
            }
        }
        Ok(out)
    }

    /// The oldest `limit` pending entries of a session, in journal order. Entries that
    /// cannot be decoded are moved to `journal_rejects` (kept, reported, never replayed).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn entries(&self, key: &SessionKey, limit: usize) -> Result<Vec<JournalEntry>> {
        let key = key.clone();
        let describe = self.describe();
        self.run(move |conn, _| {
            let err = |e| Self::sql_error(&describe, e);
            let rows: Vec<(i64, String)> = {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, message FROM journal WHERE user = ?1 AND session = ?2 ORDER BY seq LIMIT ?3",
                    )
                    .map_err(err)?;
                let rows = stmt
                    .query_map(params![key.user(), key.session(), limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(err)?
            };
            let mut out = Vec::with_capacity(rows.len());
            for (seq, json) in rows {
                match serde_json::from_str::<Message>(&json) {
                    Ok(message) => out.push(JournalEntry { seq, message }),
                    Err(e) => {
                        tracing::warn!(journal = %describe, seq, error = %e, "moving an undecodable journal entry to journal_rejects");
                        let tx = conn.transaction().map_err(err)?;
                        tx.execute(
                            "INSERT OR REPLACE INTO journal_rejects (seq, user, session, message, reason)
                             SELECT seq, user, session, message, ?2 FROM journal WHERE seq = ?1",
                            params![seq, e.to_string()],
                        )
                        .map_err(err)?;
                        tx.execute("DELETE FROM journal WHERE seq = ?1", params![seq]).map_err(err)?;
                        tx.commit().map_err(err)?;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Every pending message of a session, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn messages(&self, key: &SessionKey) -> Result<Vec<Message>> {
        Ok(self
            .entries(key, usize::MAX >> 1)
            .await?
            .into_iter()
            .map(|e| e.message)
            .collect())
    }

    /// Removes entries the store has acknowledged.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn remove(&self, seqs: Vec<i64>) -> Result<()> {
        let describe = self.describe();
        self.run(move |conn, _| {
            let err = |e| Self::sql_error(&describe, e);
            let tx = conn.transaction().map_err(err)?;
            {
                let mut del = tx
                    .prepare_cached("DELETE FROM journal WHERE seq = ?1")
                    .map_err(err)?;
                for seq in seqs {
                    del.execute(params![seq]).map_err(err)?;
                }
            }
            tx.commit().map_err(err)
        })
        .await
    }

    /// Removes every pending entry of a session (it was deleted).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn remove_session(&self, key: &SessionKey) -> Result<u64> {
        let key = key.clone();
        let describe = self.describe();
        self.run(move |conn, _| {
            conn.execute(
                "DELETE FROM journal WHERE user = ?1 AND session = ?2",
                params![key.user(), key.session()],
            )
            .map(|n| n as u64)
            .map_err(|e| Self::sql_error(&describe, e))
        })
        .await
    }

    /// Pending entries, bytes and the oldest entry's age.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn stats(&self) -> Result<JournalStats> {
        let describe = self.describe();
        self.run(move |conn, _| {
            conn.query_row(
                "SELECT entries, bytes, (SELECT journaled_at FROM journal ORDER BY seq LIMIT 1)
                   FROM journal_size WHERE id = 1",
                [],
                |r| {
                    Ok(JournalStats {
                        entries: r.get::<_, i64>(0)? as u64,
                        bytes: r.get::<_, i64>(1)? as u64,
                        oldest_ms: r.get(2)?,
                    })
                },
            )
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| Self::sql_error(&describe, e))
        })
        .await
    }
}
