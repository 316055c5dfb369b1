//! What the backends share: clock, expiry arithmetic, listing order and pages, the
//! in-process quota check (RAM and SQLite; the Redis scripts do it in Lua), and decoding a
//! message from the text fields every durable backend stores it as.

use crate::error::Result;
use crate::limits::{ListCursor, QuotaBreach, Quotas};
use crate::message::SessionKey;
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
use crate::message::{millis_to_datetime, Message, SourceRef};
use crate::store::{SessionPage, SessionSummary};

/// A stored message as its fields: the shape SQLite rows, PostgreSQL rows and Redis stream
/// entries all keep.
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) struct StoredFields<'a> {
    pub(crate) id: &'a str,
    pub(crate) role: &'a str,
    pub(crate) content: String,
    /// JSON array of citations; empty for none.
    pub(crate) sources: &'a str,
    pub(crate) created_at_ms: i64,
    pub(crate) status: &'a str,
}

/// The message the fields describe, or why they describe none (the reason a
/// `CorruptEntry` reports).
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) fn decode_message(fields: StoredFields<'_>) -> std::result::Result<Message, String> {
    let id = fields.id.parse().map_err(|e| format!("{e}"))?;
    let role = fields.role.parse().map_err(|e| format!("{e}"))?;
    let sources: Vec<SourceRef> = if fields.sources.is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(fields.sources)
            .map_err(|e| format!("sources are not valid JSON: {e}"))?
    };
    Ok(Message {
        id,
        role,
        content: fields.content,
        sources,
        created_at: millis_to_datetime(fields.created_at_ms),
        status: fields.status.parse().map_err(|e| format!("{e}"))?,
    })
}

/// Logs each stored message a read skipped as corrupt (the read itself carries on).
#[cfg(any(feature = "sqlite", feature = "redis", feature = "postgres"))]
pub(crate) fn report_corrupt(
    store: &dyn std::fmt::Display,
    key: &SessionKey,
    corrupt: &[crate::store::CorruptEntry],
) {
    for bad in corrupt {
        tracing::warn!(%store, session = %key, seq = ?bad.seq, reason = %bad.reason, "skipped a corrupt stored message");
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Remaining whole seconds until `expires_at_ms`, rounded up; `None` when it never expires.
pub(crate) fn remaining_secs(expires_at_ms: Option<i64>, now_ms: i64) -> Option<u64> {
    expires_at_ms.map(|at| ((at - now_ms).max(0) as u64).div_ceil(1000))
}

/// Puts summaries in listing order: most recent activity first, ties by session id
/// descending (the order [`ListCursor::precedes`] pages through).
pub(crate) fn sort_newest_first(sessions: &mut [SessionSummary]) {
    sessions.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| b.session.cmp(&a.session))
    });
}

/// The first `limit` (at least 1) of `sessions` in listing order (see
/// [`sort_newest_first`]), with the cursor of the next page when more remain.
pub(crate) fn page_of(mut sorted: Vec<SessionSummary>, limit: usize) -> SessionPage {
    sort_newest_first(&mut sorted);
    let limit = limit.max(1);
    let next = (sorted.len() > limit).then(|| {
        sorted.truncate(limit);
        let last = &sorted[limit - 1];
        ListCursor {
            updated_at_ms: last.updated_at.timestamp_millis(),
            session: last.session.clone(),
        }
    });
    SessionPage {
        sessions: sorted,
        next,
    }
}

/// The quota check of an append, for the stores that check in process (RAM, SQLite);
/// the Redis scripts do the same in Lua.
pub(crate) struct QuotaCheck {
    /// The limits.
    pub quotas: Quotas,
    /// The append creates the session.
    pub creates_session: bool,
    /// Bytes the session holds now.
    pub session_bytes: u64,
    /// Bytes of the messages the append would store (ids not yet stored).
    pub adding: u64,
}

impl QuotaCheck {
    /// Checks the limits; the per-user figures are computed only when needed.
    ///
    /// # Errors
    /// `Quota` naming the limit the append would break.
    pub(super) fn check(
        &self,
        key: &SessionKey,
        user_sessions: impl FnOnce() -> u64,
        user_bytes: impl FnOnce() -> u64,
    ) -> Result<()> {
        let q = self.quotas;
        let refuse = |breach: QuotaBreach| Err(breach.into_error(key.session()));
        if self.creates_session && q.user_sessions > 0 {
            let has = user_sessions();
            if has >= q.user_sessions {
                return refuse(QuotaBreach::UserSessions {
                    has,
                    limit: q.user_sessions,
                });
            }
        }
        if self.adding == 0 {
            return Ok(());
        }
        let would = self.session_bytes + self.adding;
        if q.session_bytes > 0 && would > q.session_bytes {
            return refuse(QuotaBreach::SessionBytes {
                would,
                limit: q.session_bytes,
            });
        }
        if q.user_bytes > 0 {
            let would = user_bytes() + self.adding;
            if would > q.user_bytes {
                return refuse(QuotaBreach::UserBytes {
                    would,
                    limit: q.user_bytes,
                });
            }
        }
        Ok(())
    }
}
