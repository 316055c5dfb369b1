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
//! 2. Search ([`crate::search`]): an FTS5 index of every message's content
//!    (`message_search`, contentless, so the text is not stored twice; `secure-delete`,
//!    so a deleted message leaves no trace in the index either), whose rows are
//!    numbered by `message_search_ids` (`messages` has no rowid of its own). Triggers on
//!    `messages` keep both in the same transaction as every insert and delete (append,
//!    trim, delete, retention). Each row also indexes two scope tokens, the user's and
//!    the session's ([`scope_tokens`]), so a search reads only the caller's postings.
//!    The migration indexes the messages already in the file.

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
CREATE TABLE IF NOT EXISTS message_search_ids (
    docid   INTEGER PRIMARY KEY,
    user    TEXT    NOT NULL,
    session TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    UNIQUE (user, session, seq)
);
CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5(
    scope, body, content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search_ids (user, session, seq) VALUES (new.user, new.session, new.seq);
    INSERT INTO message_search (rowid, scope, body)
    VALUES (last_insert_rowid(),
            'u' || hex(new.user) || '9 s' || hex(new.user) || 'x' || hex(new.session) || '9',
            new.content);
END;
CREATE TRIGGER IF NOT EXISTS messages_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid =
        (SELECT docid FROM message_search_ids
          WHERE user = old.user AND session = old.session AND seq = old.seq);
    DELETE FROM message_search_ids
     WHERE user = old.user AND session = old.session AND seq = old.seq;
END;
";

/// The FTS5 tokens a search of `user`'s messages (and of one session of theirs) is
/// restricted by; the `messages_search_insert` trigger writes the same ones. Ids are
/// hex-encoded (one token whatever their punctuation) and end in a digit (which no
/// stemmer rule touches).
pub(super) fn scope_tokens(user: &str, session: Option<&str>) -> String {
    let user_hex = hex_upper(user);
    match session {
        None => format!("u{user_hex}9"),
        Some(session) => format!("s{user_hex}x{}9", hex_upper(session)),
    }
}

fn hex_upper(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02X}")).collect()
}

/// The `user_version` a file is at once [`prepare`] has run.
pub(super) const VERSION: i64 = 2;

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
    if version < 2 {
        // Version 2: deletes leave no trace in the index; what is stored is indexed
        // (once: a row numbered before is indexed already).
        let numbered: i64 = tx.query_row(
            "SELECT coalesce(max(docid), 0) FROM message_search_ids",
            [],
            |r| r.get(0),
        )?;
        tx.execute_batch(
            "INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);
             INSERT INTO message_search_ids (user, session, seq)
                  SELECT user, session, seq FROM messages
                   WHERE true ON CONFLICT (user, session, seq) DO NOTHING;",
        )?;
        tx.execute(
            "INSERT INTO message_search (rowid, scope, body)
                  SELECT d.docid,
                         'u' || hex(m.user) || '9 s' || hex(m.user) || 'x' || hex(m.session) || '9',
                         m.content
                    FROM message_search_ids d
                    JOIN messages m ON m.user = d.user AND m.session = d.session AND m.seq = d.seq
                   WHERE d.docid > ?1",
            [numbered],
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
