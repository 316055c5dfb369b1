//! The journal file's schema, its migrations, and opening it.
//!
//! Version 2 (`PRAGMA user_version = 2`) tags every entry with the identity of the
//! store it was written for (`journal.store`) and keeps running totals per store, so
//! that a process replays only its own store's entries and reports the others in
//! constant time. A file written before (version 0: no `store` column) is migrated in
//! place; its entries keep `store = NULL` ("unlabelled"): nobody can tell which store
//! they were meant for, so they are reported and replayed only when an operator says
//! where they belong (`ragchat sessions sync --adopt-unlabelled`).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

/// The current schema version.
const VERSION: i64 = 2;

/// Tables, indexes and triggers of version 2 (idempotent).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS journal (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    user         TEXT    NOT NULL,
    session      TEXT    NOT NULL,
    message      TEXT    NOT NULL,
    bytes        INTEGER NOT NULL,
    journaled_at INTEGER NOT NULL,
    store        TEXT
);
CREATE INDEX IF NOT EXISTS journal_by_store_session ON journal (store, user, session, seq);
CREATE INDEX IF NOT EXISTS journal_by_store_seq ON journal (store, seq);
-- Running total of journal.bytes over every store, kept by triggers, so that the size
-- check of an append costs the same however full the journal is.
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
-- The same totals per store ('' = unlabelled entries from before version 2).
CREATE TABLE IF NOT EXISTS journal_store_size (
    store   TEXT PRIMARY KEY,
    entries INTEGER NOT NULL,
    bytes   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS journal_store_size_add AFTER INSERT ON journal
    BEGIN
        INSERT INTO journal_store_size (store, entries, bytes)
            VALUES (coalesce(NEW.store, ''), 1, NEW.bytes)
            ON CONFLICT (store) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes;
    END;
CREATE TRIGGER IF NOT EXISTS journal_store_size_remove AFTER DELETE ON journal
    BEGIN
        UPDATE journal_store_size SET entries = entries - 1, bytes = bytes - OLD.bytes
            WHERE store = coalesce(OLD.store, '');
    END;
CREATE TRIGGER IF NOT EXISTS journal_store_size_move AFTER UPDATE OF store ON journal
    BEGIN
        UPDATE journal_store_size SET entries = entries - 1, bytes = bytes - OLD.bytes
            WHERE store = coalesce(OLD.store, '');
        INSERT INTO journal_store_size (store, entries, bytes)
            VALUES (coalesce(NEW.store, ''), 1, NEW.bytes)
            ON CONFLICT (store) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes;
    END;
CREATE TABLE IF NOT EXISTS journal_rejects (
    seq     INTEGER PRIMARY KEY,
    user    TEXT,
    session TEXT,
    message TEXT,
    reason  TEXT NOT NULL,
    store   TEXT
);
";

/// Opens the journal file at `path` (creating it and its folder, private), with the
/// pragmas it needs, migrated to the current schema.
///
/// # Errors
/// The SQLite or I/O error, as text for the caller's `Unavailable`.
pub(super) fn open(path: &Path) -> Result<Connection, String> {
    crate::files::prepare_private_db(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| e.to_string())?;
    // Removed entries are overwritten with zeros, not left in free pages: the journal
    // holds people's messages, and an erased one must not stay readable on disk.
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(|e| e.to_string())?;
    migrate(&conn).map_err(|e| e.to_string())?;
    Ok(conn)
}

/// Brings a journal of any earlier version to the current one, in one transaction.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let has_journal: bool = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if has_journal && !has_column(conn, "journal", "store")? {
            // Version 0: entries without a store; they stay unlabelled (NULL).
            conn.execute_batch(
                "ALTER TABLE journal ADD COLUMN store TEXT;
                 DROP INDEX IF EXISTS journal_by_session;",
            )?;
        }
        let has_rejects: bool = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_rejects'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if has_rejects && !has_column(conn, "journal_rejects", "store")? {
            conn.execute_batch("ALTER TABLE journal_rejects ADD COLUMN store TEXT;")?;
        }
        let had_store_sizes: bool = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_store_size'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        conn.execute_batch(SCHEMA)?;
        if !had_store_sizes {
            conn.execute_batch(
                "INSERT INTO journal_store_size (store, entries, bytes)
                     SELECT coalesce(store, ''), count(*), sum(bytes) FROM journal
                      GROUP BY coalesce(store, '');",
            )?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {VERSION}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The version 0 schema, as journals written before store identities look.
    const VERSION_0: &str = "
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, session TEXT NOT NULL,
    message TEXT NOT NULL, bytes INTEGER NOT NULL, journaled_at INTEGER NOT NULL);
CREATE INDEX journal_by_session ON journal (user, session, seq);
CREATE TABLE journal_size (id INTEGER PRIMARY KEY CHECK (id = 1), entries INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT INTO journal_size VALUES (1, 2, 30);
CREATE TABLE journal_rejects (seq INTEGER PRIMARY KEY, user TEXT, session TEXT, message TEXT, reason TEXT NOT NULL);
INSERT INTO journal (user, session, message, bytes, journaled_at) VALUES ('u', 's', '{}', 10, 1), ('u', 's', '{}', 20, 2);
";

    #[test]
    fn a_version_0_journal_keeps_its_entries_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(VERSION_0)
            .unwrap();
        let conn = open(&path).unwrap();
        let (unlabelled, bytes): (i64, i64) = conn
            .query_row(
                "SELECT entries, bytes FROM journal_store_size WHERE store = ''",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((unlabelled, bytes), (2, 30));
        let nulls: i64 = conn
            .query_row(
                "SELECT count(*) FROM journal WHERE store IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(nulls, 2);
        drop(conn);
        // Opening again changes nothing.
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        let total: i64 = conn
            .query_row("SELECT sum(entries) FROM journal_store_size", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(total, 2);
    }
}
