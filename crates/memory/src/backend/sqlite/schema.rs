//! The SQLite store's schema, and the migrations that bring a file made by an older
//! version up to it in place.
//!
//! Titles (`sessions.title`, given by a person, and `sessions.auto_title`, the first
//! question) came after the first schema. A session created since has `auto_title = ''`
//! until its first question arrives; sessions already in the file when the columns are
//! added keep `NULL` there: their first question may be long trimmed or not among the
//! next append's messages, so they are never titled automatically (readers derive
//! their title instead).
//!
//! Versions after that are counted in `PRAGMA user_version` ([`VERSION`]):
//!
//! 1. The TTL deletes nothing any more: a conversation stays until retention or a
//!    person deletes it. Files made before kept an `expires_at` per session, honoured
//!    by hiding the session once it passed and sweeping it later; the migration clears
//!    them all, so sessions that were hidden but not yet swept come back (which is the
//!    point: they were never meant to be lost). The column stays, always `NULL`, so
//!    the file keeps its shape. Retention walks sessions by last activity
//!    (`sessions_by_activity`).

use rusqlite::{Connection, TransactionBehavior};

pub(super) const SCHEMA: &str = "
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
    title         TEXT,
    auto_title    TEXT,
    PRIMARY KEY (user, session)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_activity ON sessions (updated_at);
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

/// The `user_version` a file is at once [`prepare`] has run.
pub(super) const VERSION: i64 = 1;

/// Creates the tables a new file needs and adds what an older file lacks, in one
/// write transaction (a second process opening the file meanwhile waits, then finds
/// the columns there).
pub(super) fn prepare(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA)?;
    if !has_column(&tx, "sessions", "auto_title")? {
        tx.execute_batch(
            "ALTER TABLE sessions ADD COLUMN title TEXT;
             ALTER TABLE sessions ADD COLUMN auto_title TEXT;",
        )?;
    }
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        // Version 1 (see the module docs): expiry times go, and so does their index;
        // sessions hidden by an expiry but not yet swept out of the file are back.
        tx.execute_batch(
            "UPDATE sessions SET expires_at = NULL WHERE expires_at IS NOT NULL;
             DROP INDEX IF EXISTS sessions_by_expiry;",
        )?;
    }
    if version < VERSION {
        tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
    }
    tx.commit()
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for name in names {
        if name? == column {
            return Ok(true);
        }
    }
    Ok(false)
}
