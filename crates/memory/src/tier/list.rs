//! A user's sessions from both tiers, one page at a time, each conversation once.
//!
//! Both tiers page by the same order (last activity, newest first, ties by id), so a
//! page is a merge of one page from each, after the same cursor. A merge must not
//! run past the last row it fetched from a tier that has more: rows of that tier
//! beyond it were not seen yet, and would be skipped by the next cursor. So a page
//! ends at the newer of those "last fetched" rows, which can leave it short of
//! `limit` (never empty while something is left: see `merged_page`).
//!
//! A conversation in Redis is shown from Redis (its archive copy may lag); the
//! archive's copy of a conversation Redis holds on another page is recognised by
//! asking Redis, so it is not shown twice.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::backend::redis::RedisStore;
use crate::error::Result;
use crate::limits::ListCursor;
use crate::message::SessionKey;
use crate::store::{SessionPage, SessionStore, SessionSummary, Tier};

/// A row's place in the listing order: smaller comes first (newer activity, then
/// the greater id).
fn order(a: (&DateTime<Utc>, &str), b: (&DateTime<Utc>, &str)) -> Ordering {
    b.0.cmp(a.0).then_with(|| b.1.cmp(a.1))
}

fn position(s: &SessionSummary) -> (DateTime<Utc>, String) {
    (s.updated_at, s.session.clone())
}

pub(super) async fn merged_page(
    hot: &RedisStore,
    archive: &dyn SessionStore,
    user: &str,
    after: Option<&ListCursor>,
    limit: usize,
) -> Result<SessionPage> {
    let limit = limit.max(1);
    let mut cursor = after.cloned();
    // Each round moves the cursor forward; a round that shows nothing (every archived
    // row was a copy of a hot session) goes on from where it stopped.
    loop {
        let (rows, next) = one_round(hot, archive, user, cursor.as_ref(), limit).await?;
        if !rows.is_empty() || next.is_none() {
            return Ok(SessionPage {
                sessions: rows,
                next,
            });
        }
        cursor = next;
    }
}

async fn one_round(
    hot: &RedisStore,
    archive: &dyn SessionStore,
    user: &str,
    after: Option<&ListCursor>,
    limit: usize,
) -> Result<(Vec<SessionSummary>, Option<ListCursor>)> {
    let hot_page = hot.list(user, after, limit).await?;
    let archived = match archive.list(user, after, limit).await {
        Ok(page) => page,
        Err(e) if e.is_retryable() => {
            tracing::warn!(error = %e, "the archive is not answering: listing Redis's conversations only");
            SessionPage::default()
        }
        Err(e) => return Err(e),
    };
    // Where each tier's fetched rows end, if it has more.
    let mut stops = Vec::new();
    if hot_page.next.is_some() {
        stops.extend(hot_page.sessions.last().map(position));
    }
    if archived.next.is_some() {
        stops.extend(archived.sessions.last().map(position));
    }
    let stop = stops
        .into_iter()
        .min_by(|a, b| order((&a.0, &a.1), (&b.0, &b.1)));

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
    let candidates: Vec<SessionSummary> = archived
        .sessions
        .into_iter()
        .filter(|s| !in_hot.contains(&s.session))
        .collect();
    // Which of them Redis holds (listed from there, on another page): one round trip.
    let keys = candidates
        .iter()
        .map(|s| SessionKey::new(user, &s.session))
        .collect::<Result<Vec<_>>>()?;
    let held = hot.sessions_exist(&keys).await?;
    for (s, held) in candidates.into_iter().zip(held) {
        if held {
            continue;
        }
        rows.push(SessionSummary {
            tier: Some(Tier::Archived),
            ttl_remaining_secs: None,
            ..s
        });
    }
    rows.sort_by(|a, b| order((&a.updated_at, &a.session), (&b.updated_at, &b.session)));
    let mut more = stop.is_some();
    if let Some((at, id)) = &stop {
        rows.retain(|r| order((&r.updated_at, &r.session), (at, id)) != Ordering::Greater);
    }
    if rows.len() > limit {
        rows.truncate(limit);
        more = true;
    }
    let next = if !more {
        None
    } else if let Some(last) = rows.last() {
        Some(ListCursor {
            updated_at_ms: last.updated_at.timestamp_millis(),
            session: last.session.clone(),
        })
    } else {
        // Nothing to show up to the stop: go on after it.
        stop.map(|(at, session)| ListCursor {
            updated_at_ms: at.timestamp_millis(),
            session,
        })
    };
    Ok((rows, next))
}
