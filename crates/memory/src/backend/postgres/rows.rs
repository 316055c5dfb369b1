//! The SQL of the PostgreSQL store's reads, and the decoding of its rows (a bad row
//! becomes a [`CorruptEntry`], never an error). Statements are prepared once per
//! connection (deadpool's statement cache).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::backend::shared::{decode_message, page_of, StoredFields};
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{millis_to_datetime, Message, SessionKey};
use crate::store::{CorruptEntry, SessionMeta, SessionPage, SessionSummary};

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// The columns [`meta_of`] reads, in its order.
pub(super) const META_COLUMNS: &str = "message_count, bytes, created_at, updated_at, last_seq, \
     trimmed_seq, coalesce(title, nullif(auto_title, ''))";

/// A session's meta from a row of [`META_COLUMNS`]. The store is durable: nothing
/// expires, so `ttl_remaining_secs` is `None`.
pub(super) fn meta_of(row: &Row) -> SessionMeta {
    SessionMeta {
        message_count: row.get::<_, i64>(0) as u64,
        bytes: row.get::<_, i64>(1) as u64,
        created_at_ms: row.get(2),
        updated_at_ms: row.get(3),
        last_seq: row.get::<_, i64>(4) as u64,
        trimmed_seq: row.get::<_, i64>(5) as u64,
        ttl_remaining_secs: None,
        title: row.get(6),
    }
}

/// The session's meta; with `lock`, its row stays locked until the transaction ends.
pub(super) async fn read_meta(
    client: &impl GenericClient,
    key: &SessionKey,
    lock: bool,
) -> PgResult<Option<SessionMeta>> {
    let sql = format!(
        "SELECT {META_COLUMNS} FROM ragchat_sessions WHERE user_id = $1 AND session_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let stmt = client.prepare_cached(&sql).await?;
    let row = client
        .query_opt(&stmt, &[&key.user(), &key.session()])
        .await?;
    Ok(row.as_ref().map(meta_of))
}

/// A bounded run of a session's entries: good and corrupt ones, and whether the bound
/// left entries of the range out.
pub(super) type ReadRun = (Vec<(u64, Message)>, Vec<CorruptEntry>, bool);

/// Reads entries from `from` within `limit`: at most `limit.messages` rows (plus one,
/// to tell whether more remain) come back from the server, and the byte bound cuts
/// the run here.
pub(super) async fn read_range(
    client: &impl GenericClient,
    key: &SessionKey,
    from: ReadFrom,
    limit: ReadLimit,
) -> PgResult<ReadRun> {
    let (order, after) = match from {
        ReadFrom::After(after) => ("ASC", after),
        ReadFrom::Newest { after } => ("DESC", after),
    };
    let sql = format!(
        "SELECT seq, id, role, content, sources, created_at, status FROM ragchat_messages
          WHERE user_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq {order} LIMIT $4"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows_wanted = (limit.messages.max(1) as u64).saturating_add(1);
    let rows = client
        .query(
            &stmt,
            &[
                &key.user(),
                &key.session(),
                &(after.min(i64::MAX as u64) as i64),
                &(rows_wanted.min(i64::MAX as u64) as i64),
            ],
        )
        .await?;
    let mut messages = Vec::new();
    let mut corrupt = Vec::new();
    let mut used = 0u64;
    let mut more = false;
    for row in &rows {
        if !limit.admits_more(messages.len() + corrupt.len(), used) {
            more = true;
            break;
        }
        match decode_row(row) {
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

/// Decodes one row of `ragchat_messages` (columns as [`read_range`] selects them).
pub(super) fn decode_row(row: &Row) -> std::result::Result<(u64, Message), CorruptEntry> {
    let seq = row.try_get::<_, i64>(0).ok().map(|s| s as u64);
    let corrupt = |reason: String| CorruptEntry { seq, reason };
    let seq = seq.ok_or_else(|| corrupt("seq is not a number".into()))?;
    let text = |i: usize, name: &str| {
        row.try_get::<_, String>(i)
            .map_err(|e| corrupt(format!("{name}: {e}")))
    };
    let content = text(3, "content")?;
    let created_at_ms: i64 = row
        .try_get(5)
        .map_err(|e| corrupt(format!("created_at: {e}")))?;
    let message = decode_message(StoredFields {
        id: &text(1, "id")?,
        role: &text(2, "role")?,
        content,
        sources: &text(4, "sources")?,
        created_at_ms,
        status: &text(6, "status")?,
    })
    .map_err(corrupt)?;
    Ok((seq, message))
}

/// One page of a user's sessions after `after`, most recent activity first (ties by
/// id, descending), from the `(user_id, updated_at, session_id)` index.
pub(super) async fn list_page(
    client: &impl GenericClient,
    user: &str,
    after: Option<&ListCursor>,
    limit: usize,
) -> PgResult<SessionPage> {
    let limit = limit.max(1);
    let take = (limit as u64).saturating_add(1).min(i64::MAX as u64) as i64;
    let select = "SELECT session_id, message_count, bytes, created_at, updated_at,
                         coalesce(title, nullif(auto_title, '')) FROM ragchat_sessions";
    let rows = match after {
        None => {
            let sql = format!(
                "{select} WHERE user_id = $1
                  ORDER BY updated_at DESC, session_id DESC LIMIT $2"
            );
            let stmt = client.prepare_cached(&sql).await?;
            client.query(&stmt, &[&user, &take]).await?
        }
        Some(cursor) => {
            let sql = format!(
                "{select} WHERE user_id = $1 AND (updated_at, session_id) < ($2, $3)
                  ORDER BY updated_at DESC, session_id DESC LIMIT $4"
            );
            let stmt = client.prepare_cached(&sql).await?;
            client
                .query(
                    &stmt,
                    &[&user, &cursor.updated_at_ms, &cursor.session, &take],
                )
                .await?
        }
    };
    let sessions = rows
        .iter()
        .map(|r| SessionSummary {
            session: r.get(0),
            message_count: r.get::<_, i64>(1) as u64,
            bytes: r.get::<_, i64>(2) as u64,
            created_at: millis_to_datetime(r.get(3)),
            updated_at: millis_to_datetime(r.get(4)),
            ttl_remaining_secs: None,
            title: r.get(5),
            tier: None,
        })
        .collect();
    Ok(page_of(sessions, limit))
}

/// One page of the ids of the users who have sessions, ascending, after `after`.
///
/// `ragchat_usage` holds one row per user who ever had a session, so its primary key
/// walks the users in order without visiting each of their sessions; the `EXISTS`
/// probe on the sessions' primary key leaves out the users whose sessions are all
/// gone (their usage row stays), whatever the usage counters say. It is the one
/// statement that names no single user: on a database distributed by user it runs on
/// every shard (an operator's walk, never a request's).
pub(super) async fn user_page(
    client: &impl GenericClient,
    after: Option<&str>,
    limit: usize,
) -> PgResult<Vec<String>> {
    let take = limit.clamp(1, i64::MAX as usize) as i64;
    let stmt = client
        .prepare_cached(
            "SELECT u.user_id FROM ragchat_usage u
              WHERE u.user_id > $1
                AND EXISTS (SELECT 1 FROM ragchat_sessions s WHERE s.user_id = u.user_id)
              ORDER BY u.user_id LIMIT $2",
        )
        .await?;
    let rows = client.query(&stmt, &[&after.unwrap_or(""), &take]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
