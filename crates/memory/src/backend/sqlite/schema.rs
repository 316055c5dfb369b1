//! The SQLite store's schema, and the migrations that bring a file made by an older
//! version up to it in place.
//!
//! Titles (`sessions.title`, given by a person, and `sessions.auto_title`, the first
//! question) came after the first schema. A session created since has `auto_title = ''`
//! until its first question arrives; sessions already in the file when the columns are
//! added keep `NULL` there: their first question may be long trimmed or not among the
//! next append's messages, so they are never titled automatically (readers derive
//! their title instead).

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
