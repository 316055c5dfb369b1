//! The journal file: one SQLite connection, seen for one store (see [`super`]).

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{schema, JournalConfig, JournalEntry, JournalStats};
use crate::error::{MemoryError, Result};
use crate::limits::ReadLimit;
use crate::message::{Message, SessionKey};

/// The journal file, seen for one store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: JournalConfig,
    store: String,
    conn: Mutex<Connection>,
}

impl Journal {
    /// Opens (creating if needed, private) the journal file and its folder, for the
    /// store whose [identity](crate::SessionStore::identity) is `store`. A journal
    /// written by an older version is migrated (its entries stay unlabelled).
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be created, opened or migrated.
    pub fn open(config: JournalConfig, store: &str) -> Result<Self> {
        let conn = schema::open(&config.path).map_err(|reason| MemoryError::Unavailable {
            store: format!("journal {}", config.path.display()),
            reason,
        })?;
        Ok(Journal {
            inner: Arc::new(Inner {
                config,
                store: store.to_string(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// The identity of the store this handle writes and replays for.
    pub fn store(&self) -> &str {
        &self.inner.store
    }

    pub(super) fn describe(&self) -> String {
        format!("journal {}", self.inner.config.path.display())
    }

    /// Runs `f` with the connection and this handle's store on the blocking pool.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &JournalConfig, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        let describe = self.describe();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn, &inner.config, &inner.store)
        })
        .await
        .map_err(|e| MemoryError::Unavailable {
            store: describe,
            reason: format!("background task failed: {e}"),
        })?
    }

    pub(super) fn sql_error(describe: &str, e: rusqlite::Error) -> MemoryError {
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
        self.run(move |conn, config, store| {
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
                        "INSERT INTO journal (user, session, message, bytes, journaled_at, store)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(err)?;
                for (json, bytes) in &encoded {
                    insert
                        .execute(params![key.user(), key.session(), json, *bytes as i64, now, store])
                        .map_err(err)?;
                }
            }
            tx.commit().map_err(err)
        })
        .await
    }

    /// This store's sessions with pending entries and how many, oldest pending first.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn pending_sessions(&self) -> Result<Vec<(SessionKey, u64)>> {
        let describe = self.describe();
        self.run(move |conn, _, store| Self::query_pending(conn, store, &describe))
            .await
    }

    /// [`Journal::pending_sessions`] on the calling thread (for startup).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub fn pending_sessions_blocking(&self) -> Result<Vec<(SessionKey, u64)>> {
        let conn = self.inner.conn.lock().unwrap_or_else(|e| e.into_inner());
        Self::query_pending(&conn, &self.inner.store, &self.describe())
    }

    fn query_pending(
        conn: &Connection,
        store: &str,
        describe: &str,
    ) -> Result<Vec<(SessionKey, u64)>> {
        let err = |e| Self::sql_error(describe, e);
        let mut stmt = conn
            .prepare_cached(
                "SELECT user, session, count(*), min(seq) AS first FROM journal WHERE store = ?1
                  GROUP BY user, session ORDER BY first",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([store], |r| {
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

    /// The oldest pending entries of a session, in journal order, within `limit`
    /// (messages, and it stops once their encoded bytes reach the byte bound). Entries
    /// that cannot be decoded are moved to `journal_rejects` (kept, reported, never
    /// replayed).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn entries(&self, key: &SessionKey, limit: ReadLimit) -> Result<Vec<JournalEntry>> {
        self.read_entries(key, limit, false).await
    }

    /// The newest pending messages of a session within `limit`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn recent_messages(
        &self,
        key: &SessionKey,
        limit: ReadLimit,
    ) -> Result<Vec<Message>> {
        Ok(self
            .read_entries(key, limit, true)
            .await?
            .into_iter()
            .map(|e| e.message)
            .collect())
    }

    async fn read_entries(
        &self,
        key: &SessionKey,
        limit: ReadLimit,
        newest: bool,
    ) -> Result<Vec<JournalEntry>> {
        let key = key.clone();
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let sql = if newest {
                "SELECT seq, message, bytes FROM journal WHERE store = ?1 AND user = ?2 AND session = ?3
                  ORDER BY seq DESC"
            } else {
                "SELECT seq, message, bytes FROM journal WHERE store = ?1 AND user = ?2 AND session = ?3
                  ORDER BY seq"
            };
            // Rows are read lazily: the bound stops the read, not a filter after it.
            let mut rows: Vec<(i64, String)> = Vec::new();
            {
                let mut stmt = conn.prepare_cached(sql).map_err(err)?;
                let mut cursor = stmt
                    .query(params![store, key.user(), key.session()])
                    .map_err(err)?;
                let mut used = 0u64;
                while limit.admits_more(rows.len(), used) {
                    let Some(row) = cursor.next().map_err(err)? else {
                        break;
                    };
                    used += row.get::<_, i64>(2).map_err(err)?.max(0) as u64;
                    rows.push((row.get(0).map_err(err)?, row.get(1).map_err(err)?));
                }
            }
            if newest {
                rows.reverse();
            }
            let mut out = Vec::with_capacity(rows.len());
            for (seq, json) in rows {
                match serde_json::from_str::<Message>(&json) {
                    Ok(message) => out.push(JournalEntry { seq, message }),
                    Err(e) => {
                        tracing::warn!(journal = %describe, seq, error = %e, "moving an undecodable journal entry to journal_rejects");
                        let tx = conn.transaction().map_err(err)?;
                        tx.execute(
                            "INSERT OR REPLACE INTO journal_rejects (seq, user, session, message, reason, store)
                             SELECT seq, user, session, message, ?2, store FROM journal WHERE seq = ?1",
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

    /// Removes entries the store has acknowledged.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn remove(&self, seqs: Vec<i64>) -> Result<()> {
        let describe = self.describe();
        self.run(move |conn, _, _| {
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

    /// Removes every pending entry of a session of this store (it was deleted).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn remove_session(&self, key: &SessionKey) -> Result<u64> {
        let key = key.clone();
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let tx = conn.transaction().map_err(err)?;
            let n = tx
                .execute(
                    "DELETE FROM journal WHERE store = ?1 AND user = ?2 AND session = ?3",
                    params![store, key.user(), key.session()],
                )
                .map_err(err)?;
            tx.execute(
                "DELETE FROM journal_rejects WHERE store = ?1 AND user = ?2 AND session = ?3",
                params![store, key.user(), key.session()],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            Ok(n as u64)
        })
        .await
    }

    /// Removes a session's pending entries journaled before `before_ms` (retention
    /// deleted the session: older entries go with it, so a replay cannot bring it
    /// back; newer ones are activity since, and stay to be replayed). Returns how many.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn remove_session_before(&self, key: &SessionKey, before_ms: i64) -> Result<u64> {
        let key = key.clone();
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let n = conn
                .execute(
                    "DELETE FROM journal
                      WHERE store = ?1 AND user = ?2 AND session = ?3 AND journaled_at < ?4",
                    params![store, key.user(), key.session(), before_ms],
                )
                .map_err(|e| Self::sql_error(&describe, e))?;
            Ok(n as u64)
        })
        .await
    }

    /// Every session of `user` that this store's entries (pending or rejected) name.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn sessions_of(&self, user: &str) -> Result<Vec<SessionKey>> {
        let user = user.to_string();
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT session FROM journal WHERE store = ?1 AND user = ?2
                     UNION SELECT session FROM journal_rejects WHERE store = ?1 AND user = ?2",
                )
                .map_err(err)?;
            let names = stmt
                .query_map(params![store, user], |r| r.get::<_, String>(0))
                .map_err(err)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(err)?;
            Ok(names
                .into_iter()
                .filter_map(|s| SessionKey::new(user.as_str(), s).ok())
                .collect())
        })
        .await
    }

    /// Empties the write-ahead log into the file and truncates it, so that pages
    /// overwritten by `secure_delete` leave no earlier copy behind. Best effort: a
    /// reader in another process may keep the log from being truncated (logged).
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be written.
    pub async fn scrub(&self) -> Result<()> {
        let describe = self.describe();
        self.run(move |conn, _, _| {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(|e| Self::sql_error(&describe, e))?;
            if busy != 0 {
                tracing::debug!(journal = %describe, "another reader kept the journal's log from being truncated");
            }
            Ok(())
        })
        .await
    }

    /// Pending entries, bytes and the oldest entry's age, for this store.
    ///
    /// # Errors
    /// `Unavailable` when the journal cannot be read.
    pub async fn stats(&self) -> Result<JournalStats> {
        let describe = self.describe();
        self.run(move |conn, _, store| {
            let err = |e| Self::sql_error(&describe, e);
            let (entries, bytes) = conn
                .query_row(
                    "SELECT entries, bytes FROM journal_store_size WHERE store = ?1",
                    [store],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(err)?
                .unwrap_or((0, 0));
            let oldest_ms = if entries > 0 {
                conn.query_row(
                    "SELECT journaled_at FROM journal WHERE store = ?1 ORDER BY seq LIMIT 1",
                    [store],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err)?
            } else {
                None
            };
            Ok(JournalStats {
                entries: entries.max(0) as u64,
                bytes: bytes.max(0) as u64,
                oldest_ms,
            })
        })
        .await
    }
}
