//! A user's sessions from both tiers, one page at a time, each conversation once.
//!
//! Both tiers page by the same order (last activity, newest first, ties by id), so a
//! page is the first `limit` of the union of one page from each, after the same
//! cursor. A conversation in Redis is shown from Redis (the archive's copy may lag);
//! the archive's copy of a conversation that Redis holds but listed on another page
//! is recognised by asking Redis for it, so it is not shown twice.

use std::collections::HashSet;

use crate::backend::redis::RedisStore;
use crate::error::Result;
use crate::limits::ListCursor;
use crate::message::SessionKey;
use crate::store::{SessionPage, SessionStore, SessionSummary, Tier};

pub(super) async fn merged_page(
    hot: &RedisStore,
    archive: &dyn SessionStore,
    user: &str,
    after: Option<&ListCursor>,
    limit: usize,
) -> Result<SessionPage> {
    let limit = limit.max(1);
    let hot_page = hot.list(user, after, limit).await?;
    let archived = match archive.list(user, after, limit).await {
        Ok(page) => page,
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "the archive is not answering: listing Redis's conversations only");
            SessionPage::default()
        }
        Err(e) => return Err(e),
    };
    let in_hot: HashSet<String> = hot_page
        .sessions
        .iter()
        .map(|s| s.session.clone())
        .collect();
    let mut rows: Vec<SessionSummary> = hot_page
        .sessions
        .into_iter()
        .map(|s| SessionSummary {
            tier: Some(Tier::Hot),
            ..s
        })
        .collect();
    let mut more = hot_page.next.is_some() || archived.next.is_some();
    for s in archived.sessions {
        if in_hot.contains(&s.session) {
            continue;
        }
        let key = SessionKey::new(user, &s.session)?;
        if hot.meta(&key).await?.is_some() {
            continue; // in Redis, listed from there (on another page)
        }
        rows.push(SessionSummary {
            tier: Some(Tier::Archived),
            ttl_remaining_secs: None,
            ..s
        });
    }
    rows.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| b.session.cmp(&a.session))
    });
    if rows.len() > limit {
        rows.truncate(limit);
        more = true;
    }
    let next = match rows.last() {
        Some(last) if more => Some(ListCursor {
            updated_at_ms: last.updated_at.timestamp_millis(),
            session: last.session.clone(),
        }),
        _ => None,
    };
    Ok(SessionPage {
        sessions: rows,
        next,
    })
}
