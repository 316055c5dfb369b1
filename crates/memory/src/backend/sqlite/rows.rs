//! The SQL of the SQLite store: its schema, and the statements each operation is made
//! of (reads are paged and bounded: a page query stops at the read's limit in messages
//! and bytes, so no call reads a whole session).

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::backend::shared::{decode_message, page_of, StoredFields};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{millis_to_datetime, Message, SessionKey};
use crate::store::{CorruptEntry, SessionMeta, SessionPage, SessionSummary};
use crate::title::title_of;

/// Retention: deletes at most `limit` sessions whose last activity is before
/// `before_ms`, oldest first (by the `sessions_by_activity` index), with their
/// messages, in one transaction; returns their keys. A user's usage is counted from
/// the rows themselves, so a deleted session frees its bytes and its place at once.
pub(super) fn purge_idle(
    conn: &mut Connection,
    before_ms: i64,
    limit: usize,
) -> rusqlite::Result<Vec<SessionKey>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let idle: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT user, session FROM sessions WHERE updated_at < ?1
              ORDER BY updated_at, user, session LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![before_ms, limit.min(i64::MAX as usize) as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut keys = Vec::with_capacity(idle.len());
    for (user, session) in idle {
        match SessionKey::new(&user, &session) {
            Ok(key) => {
                delete_session(&tx, &key)?;
                keys.push(key);
            }
            // A row no valid key names (written by hand): delete it all the same.
            Err(_) => {
                tx.execute(
                    "DELETE FROM messages WHERE user = ?1 AND session = ?2",
                    params![user, session],
                )?;
                tx.execute(
                    "DELETE FROM sessions WHERE user = ?1 AND session = ?2",
                    params![user, session],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(keys)
}

pub(super) fn delete_session(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
) -> rusqlite::Result<bool> {
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

/// The session's meta; `ttl_remaining_secs` is always `None`: the TTL deletes
/// nothing here.
pub(super) fn read_meta(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
) -> rusqlite::Result<Option<SessionMeta>> {
    tx.query_row(
        "SELECT message_count, bytes, created_at, updated_at, last_seq, trimmed_seq,
                coalesce(title, nullif(auto_title, ''))
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
                ttl_remaining_secs: None,
                title: r.get(6)?,
            })
        },
    )
    .optional()
}

pub(super) fn ensure_session(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sessions (user, session, created_at, updated_at, auto_title)
         VALUES (?1, ?2, ?3, ?3, '')
         ON CONFLICT (user, session) DO NOTHING",
        params![key.user(), key.session(), now],
    )?;
    Ok(())
}

/// Sets the session's automatic title from `messages` if it is still waiting for its
/// first question (`auto_title = ''`; a session stored before titles existed has
/// `NULL` there and keeps it).
pub(super) fn set_auto_title(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    messages: &[Message],
) -> rusqlite::Result<()> {
    if let Some(title) = title_of(messages) {
        tx.execute(
            "UPDATE sessions SET auto_title = ?3 WHERE user = ?1 AND session = ?2 AND auto_title = ''",
            params![key.user(), key.session(), title],
        )?;
    }
    Ok(())
}

/// Sets or clears the title given by a person; whether the session exists.
pub(super) fn set_given_title(
    conn: &Connection,
    key: &SessionKey,
    title: Option<&str>,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE sessions SET title = ?3 WHERE user = ?1 AND session = ?2",
        params![key.user(), key.session(), title],
    )?;
    Ok(n > 0)
}

/// Decodes one row of `messages`; a bad row becomes a `CorruptEntry`, never an error.
pub(super) fn decode_row(
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
        let created_at_ms: i64 = row
            .get(5)
            .map_err(|e| corrupt(format!("created_at: {e}")))?;
        let message = decode_message(StoredFields {
            id: &text(1, "id")?,
            role: &text(2, "role")?,
            content: text(3, "content")?,
            sources: &text(4, "sources")?,
            created_at_ms,
            status: &text(6, "status")?,
        })
        .map_err(corrupt)?;
        Ok((seq, message))
    })();
    Ok(decoded)
}

/// A bounded run of a session's entries from `from`; good and corrupt entries, and
/// whether the bound left entries of the range out.
pub(super) type ReadRun = (Vec<(u64, Message)>, Vec<CorruptEntry>, bool);

/// Reads entries from `from` within `limit`, stopping as soon as the limit is reached
/// (SQLite reads rows lazily, so rows past the bound are never read).
pub(super) fn read_range(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    from: ReadFrom,
    limit: ReadLimit,
) -> rusqlite::Result<ReadRun> {
    let (sql, after) = match from {
        ReadFrom::After(after) => (
            "SELECT seq, id, role, content, sources, created_at, status FROM messages
              WHERE user = ?1 AND session = ?2 AND seq > ?3 ORDER BY seq",
            after,
        ),
        ReadFrom::Newest { after } => (
            "SELECT seq, id, role, content, sources, created_at, status FROM messages
              WHERE user = ?1 AND session = ?2 AND seq > ?3 ORDER BY seq DESC",
            after,
        ),
    };
    let mut stmt = tx.prepare_cached(sql)?;
    let mut rows = stmt.query(params![
        key.user(),
        key.session(),
        after.min(i64::MAX as u64) as i64
    ])?;
    let mut messages = Vec::new();
    let mut corrupt = Vec::new();
    let mut used = 0u64;
    let mut more = false;
    while let Some(row) = rows.next()? {
        if !limit.admits_more(messages.len() + corrupt.len(), used) {
            more = true;
            break;
        }
        match decode_row(row)? {
            Ok(entry) => {
                used += entry.1.stored_bytes();
                messages.push(entry);
            }
            Err(bad) => corrupt.push(bad),
        }
    }
    if matches!(from, ReadFrom::Newest { .. }) {
        messages.reverse();
        corrupt.reverse();
    }
    Ok((messages, corrupt, more))
}

/// One page of a user's sessions after `after`, most recent activity first.
pub(super) fn list_page(
    conn: &Connection,
    user: &str,
    after: Option<&ListCursor>,
    limit: usize,
) -> rusqlite::Result<SessionPage> {
    let limit = limit.max(1);
    let (after_ms, after_session) = match after {
        Some(c) => (c.updated_at_ms, c.session.clone()),
        None => (i64::MAX, String::new()),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT session, message_count, bytes, created_at, updated_at,
                coalesce(title, nullif(auto_title, '')) FROM sessions
          WHERE user = ?1
            AND (?4 = 0 OR updated_at < ?2 OR (updated_at = ?2 AND session < ?3))
          ORDER BY updated_at DESC, session DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            user,
            after_ms,
            after_session,
            i64::from(after.is_some()),
            (limit + 1).min(i64::MAX as usize) as i64
        ],
        |r| {
            Ok(SessionSummary {
                session: r.get(0)?,
                message_count: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
                created_at: millis_to_datetime(r.get(3)?),
                updated_at: millis_to_datetime(r.get(4)?),
                ttl_remaining_secs: None,
                title: r.get(5)?,
                tier: None,
            })
        },
    )?;
    let sorted = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(page_of(sorted, limit))
}

/// One page of the ids of the users with a session, ascending, after `after`: a walk
/// of the `(user, session)` primary key in order, stopping at `limit` users.
pub(super) fn user_page(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT user FROM sessions
          WHERE user > ?1 ORDER BY user LIMIT ?2",
    )?;
    let limit = limit.clamp(1, i64::MAX as usize) as i64;
    let rows = stmt.query_map(params![after.unwrap_or(""), limit], |r| r.get(0))?;
    rows.collect()
}

/// A user's sessions, and their stored bytes.
pub(super) fn user_usage(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
) -> rusqlite::Result<(u64, u64)> {
    tx.query_row(
        "SELECT count(*), coalesce(sum(bytes), 0) FROM sessions WHERE user = ?1",
        params![user],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
}

/// Bytes of the messages an append would store: those whose id is not stored yet
/// (each id once).
pub(super) fn new_bytes(
    tx: &rusqlite::Transaction<'_>,
    key: &SessionKey,
    messages: &[Message],
) -> rusqlite::Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut stmt =
        tx.prepare_cached("SELECT 1 FROM messages WHERE user = ?1 AND session = ?2 AND id = ?3")?;
    let mut adding = 0;
    for m in messages {
        if !seen.insert(m.id) {
            continue;
        }
        let stored = stmt
            .query_row(params![key.user(), key.session(), m.id.to_string()], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !stored {
            adding += m.stored_bytes();
        }
    }
    Ok(adding)
}
