//! The PostgreSQL store's writes, each inside the caller's transaction.
//!
//! An append locks the session's row first (created if missing), then, when it must,
//! the user's `ragchat_usage` row: always in that order, so appends and deletes of one
//! user never deadlock, and two servers appending to one session take turns on its
//! row (exact counts, consecutive seqs, no doubles).

use std::collections::HashSet;

use deadpool_postgres::{GenericClient, Transaction};

use super::rows::{meta_of, read_meta, META_COLUMNS};
use crate::backend::shared::QuotaCheck;
use crate::error::MemoryError;
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, AppendOutcome, SessionMeta};
use crate::title::title_of;

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// Creates the session's row if missing; whether this call created it.
async fn ensure_session(tx: &Transaction<'_>, key: &SessionKey, now: i64) -> PgResult<bool> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO ragchat_sessions (user_id, session_id, created_at, updated_at)
             VALUES ($1, $2, $3, $3) ON CONFLICT (user_id, session_id) DO NOTHING RETURNING 1",
        )
        .await?;
    let row = tx
        .query_opt(&stmt, &[&key.user(), &key.session(), &now])
        .await?;
    Ok(row.is_some())
}

/// Adds to the user's usage (sessions and bytes); creates the row when missing.
async fn add_usage(tx: &Transaction<'_>, user: &str, sessions: i64, bytes: i64) -> PgResult<()> {
    if sessions == 0 && bytes == 0 {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO ragchat_usage (user_id, sessions, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE
                SET sessions = ragchat_usage.sessions + EXCLUDED.sessions,
                    bytes = ragchat_usage.bytes + EXCLUDED.bytes",
        )
        .await?;
    tx.execute(&stmt, &[&user, &sessions, &bytes]).await?;
    Ok(())
}

/// The user's live sessions and stored bytes, with their row locked until the end of
/// the transaction (so that two appends checking one user's quotas take turns).
async fn locked_usage(tx: &Transaction<'_>, user: &str) -> PgResult<(u64, u64)> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO ragchat_usage (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&user]).await?;
    let stmt = tx
        .prepare_cached("SELECT sessions, bytes FROM ragchat_usage WHERE user_id = $1 FOR UPDATE")
        .await?;
    let row = tx.query_one(&stmt, &[&user]).await?;
    Ok((
        row.get::<_, i64>(0).max(0) as u64,
        row.get::<_, i64>(1).max(0) as u64,
    ))
}

/// The messages of `messages` not stored yet (each id once), in order.
async fn new_messages<'m>(
    tx: &Transaction<'_>,
    key: &SessionKey,
    messages: &'m [Message],
) -> PgResult<Vec<Option<&'m Message>>> {
    let ids: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();
    let stored: HashSet<String> = if ids.is_empty() {
        HashSet::new()
    } else {
        let stmt = tx
            .prepare_cached(
                "SELECT id FROM ragchat_messages
                  WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)",
            )
            .await?;
        tx.query(&stmt, &[&key.user(), &key.session(), &ids])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let mut seen = HashSet::new();
    Ok(messages
        .iter()
        .zip(ids)
        .map(|(m, id)| (!stored.contains(&id) && seen.insert(id)).then_some(m))
        .collect())
}

/// Appends in the caller's transaction. `Ok(Err(Quota))` when a quota refuses: the
/// caller rolls back, and nothing is written.
pub(super) async fn append(
    tx: &Transaction<'_>,
    key: &SessionKey,
    messages: &[Message],
    opts: AppendOptions,
    now: i64,
) -> PgResult<Result<AppendOutcome, MemoryError>> {
    let created = ensure_session(tx, key, now).await?;
    let meta = read_meta(tx, key, true)
        .await?
        .expect("the session row was just ensured and is locked");
    let fresh = new_messages(tx, key, messages).await?;
    let adding: u64 = fresh.iter().flatten().map(|m| m.stored_bytes()).sum();
    let q = opts.quotas;
    let (sessions, bytes) = if (q.user_sessions > 0 && created) || (q.user_bytes > 0 && adding > 0)
    {
        locked_usage(tx, key.user()).await?
    } else {
        (0, 0)
    };
    let check = QuotaCheck {
        quotas: q,
        creates_session: created,
        session_bytes: meta.bytes,
        adding,
    };
    // The user's figures are asked for exactly when they were read above.
    if let Err(refused) = check.check(key, || sessions, || bytes) {
        return Ok(Err(refused));
    }

    let mut last_seq = meta.last_seq as i64;
    let mut seqs = Vec::with_capacity(messages.len());
    let mut cols = Columns::default();
    for m in &fresh {
        match m {
            Some(m) => {
                last_seq += 1;
                seqs.push(Some(last_seq as u64));
                cols.push(last_seq, m);
            }
            None => seqs.push(None),
        }
    }
    let count = meta.message_count as i64 + cols.seq.len() as i64;
    if !cols.seq.is_empty() {
        cols.insert(tx, key).await?;
    }
    let (count, trimmed_bytes, trimmed_seq) =
        if opts.max_messages > 0 && count as u64 > opts.max_messages {
            let excess = count - opts.max_messages as i64;
            let (cut_seq, cut_bytes) = trim(tx, key, excess).await?;
            (
                count - excess,
                cut_bytes,
                cut_seq.max(meta.trimmed_seq as i64),
            )
        } else {
            (count, 0, meta.trimmed_seq as i64)
        };
    let bytes = meta.bytes as i64 + adding as i64 - trimmed_bytes;
    let title = title_of(messages);
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE ragchat_sessions
                SET updated_at = greatest(updated_at, $3), message_count = $4, bytes = $5,
                    last_seq = $6, trimmed_seq = $7,
                    auto_title = CASE WHEN auto_title = '' AND $8::text IS NOT NULL
                                      THEN $8 ELSE auto_title END
              WHERE user_id = $1 AND session_id = $2
          RETURNING {META_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[
                &key.user(),
                &key.session(),
                &now,
                &count,
                &bytes,
                &last_seq,
                &trimmed_seq,
                &title,
            ],
        )
        .await?;
    add_usage(
        tx,
        key.user(),
        i64::from(created),
        adding as i64 - trimmed_bytes,
    )
    .await?;
    Ok(Ok(AppendOutcome {
        seqs,
        meta: meta_of(&row),
        stamp: None,
        repaired: false,
    }))
}

/// Deletes the oldest `excess` entries; the highest seq cut and the bytes freed.
async fn trim(tx: &Transaction<'_>, key: &SessionKey, excess: i64) -> PgResult<(i64, i64)> {
    let stmt = tx
        .prepare_cached(
            "WITH cut AS (
                 DELETE FROM ragchat_messages
                  WHERE user_id = $1 AND session_id = $2 AND seq IN (
                        SELECT seq FROM ragchat_messages
                         WHERE user_id = $1 AND session_id = $2 ORDER BY seq LIMIT $3)
              RETURNING seq, bytes)
             SELECT coalesce(max(seq), 0), coalesce(sum(bytes), 0)::bigint FROM cut",
        )
        .await?;
    let row = tx
        .query_one(&stmt, &[&key.user(), &key.session(), &excess])
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The new rows of `ragchat_messages`, column by column (inserted in one statement).
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    id: Vec<String>,
    role: Vec<&'static str>,
    content: Vec<String>,
    sources: Vec<String>,
    created_at: Vec<i64>,
    status: Vec<&'static str>,
    bytes: Vec<i64>,
}

impl Columns {
    fn push(&mut self, seq: i64, m: &Message) {
        self.seq.push(seq);
        self.id.push(m.id.to_string());
        self.role.push(m.role.as_str());
        self.content.push(m.content.clone());
        self.sources.push(m.sources_json());
        self.created_at.push(m.created_at_millis());
        self.status.push(m.status.as_str());
        self.bytes.push(m.stored_bytes() as i64);
    }

    async fn insert(&self, tx: &Transaction<'_>, key: &SessionKey) -> PgResult<()> {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO ragchat_messages
                    (user_id, session_id, seq, id, role, content, sources, created_at, status, bytes)
                 SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[],
                                              $7::text[], $8::bigint[], $9::text[], $10::bigint[])",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &key.user(),
                &key.session(),
                &self.seq,
                &self.id,
                &self.role,
                &self.content,
                &self.sources,
                &self.created_at,
                &self.status,
                &self.bytes,
            ],
        )
        .await?;
        Ok(())
    }
}

/// Creates the session if missing (no quota check: an empty session holds nothing).
pub(super) async fn create(
    tx: &Transaction<'_>,
    key: &SessionKey,
    now: i64,
) -> PgResult<SessionMeta> {
    if ensure_session(tx, key, now).await? {
        add_usage(tx, key.user(), 1, 0).await?;
    }
    Ok(read_meta(tx, key, false)
        .await?
        .expect("the session row was just ensured"))
}

/// Deletes the session, its messages and its share of the user's usage; whether it
/// existed.
pub(super) async fn delete(tx: &Transaction<'_>, key: &SessionKey) -> PgResult<bool> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM ragchat_sessions WHERE user_id = $1 AND session_id = $2 RETURNING bytes",
        )
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&key.user(), &key.session()]).await? else {
        return Ok(false);
    };
    let bytes: i64 = row.get(0);
    let stmt = tx
        .prepare_cached("DELETE FROM ragchat_messages WHERE user_id = $1 AND session_id = $2")
        .await?;
    tx.execute(&stmt, &[&key.user(), &key.session()]).await?;
    add_usage(tx, key.user(), -1, -bytes).await?;
    // A user's last session gone, their usage row goes too: after an erasure no row
    // names them. An append racing this waits on the row's lock and creates it again.
    let stmt = tx
        .prepare_cached("DELETE FROM ragchat_usage WHERE user_id = $1 AND sessions <= 0")
        .await?;
    tx.execute(&stmt, &[&key.user()]).await?;
    Ok(true)
}

/// Sets or clears the title given by a person; whether the session exists.
pub(super) async fn set_title(
    client: &impl GenericClient,
    key: &SessionKey,
    title: Option<&str>,
) -> PgResult<bool> {
    let stmt = client
        .prepare_cached(
            "UPDATE ragchat_sessions SET title = $3 WHERE user_id = $1 AND session_id = $2",
        )
        .await?;
    let n = client
        .execute(&stmt, &[&key.user(), &key.session(), &title])
        .await?;
    Ok(n > 0)
}

/// The advisory lock a retention batch holds for its transaction ("ragchat" + 1): one
/// server purges at a time, the others find it taken and leave the work to it.
const RETENTION_LOCK: i64 = 0x0072_6167_6368_6175;

/// Retention: deletes at most `limit` sessions idle since before `before_ms`, oldest
/// first, with their messages and their share of their users' usage, in one statement
/// of the caller's transaction; returns their keys. Sessions being appended to right
/// now are skipped (they are not idle), and so is the whole batch while another
/// server runs one.
pub(super) async fn purge_idle(
    tx: &Transaction<'_>,
    before_ms: i64,
    limit: i64,
) -> PgResult<Vec<(String, String)>> {
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&RETENTION_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(Vec::new());
    }
    // Session rows first, then usage rows, as appends and deletes take them.
    let stmt = tx
        .prepare_cached(
            "WITH idle AS (
                 SELECT user_id, session_id FROM ragchat_sessions
                  WHERE updated_at < $1
                  ORDER BY updated_at, user_id, session_id
                  LIMIT $2
                    FOR UPDATE SKIP LOCKED
             ), gone AS (
                 DELETE FROM ragchat_sessions s USING idle
                  WHERE s.user_id = idle.user_id AND s.session_id = idle.session_id
              RETURNING s.user_id, s.session_id, s.bytes, s.updated_at
             ), messages AS (
                 DELETE FROM ragchat_messages m USING gone
                  WHERE m.user_id = gone.user_id AND m.session_id = gone.session_id
             ), freed AS (
                 UPDATE ragchat_usage u
                    SET sessions = u.sessions - g.sessions, bytes = u.bytes - g.bytes
                   FROM (SELECT user_id, count(*) AS sessions, sum(bytes)::bigint AS bytes
                           FROM gone GROUP BY user_id) g
                  WHERE u.user_id = g.user_id
             )
             SELECT user_id, session_id FROM gone ORDER BY updated_at, user_id, session_id",
        )
        .await?;
    let rows = tx.query(&stmt, &[&before_ms, &limit]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
