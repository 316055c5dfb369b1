//! One page of a user's session list from the index ZSET, never the whole list.
//!
//! The index scores each session by its last append (ms), so a page is a
//! `ZREVRANGEBYSCORE` from the cursor's score down: most recent activity first, ties
//! by session id descending (the order Redis gives equal scores in reverse). Members
//! at the cursor's own score that do not come after it are skipped. The page's
//! counters come from each session's meta in one pipeline; a member whose meta is
//! gone is either repaired (its log is still there: the meta was evicted) or dropped
//! from the index (it expired).

use redis::Value;

use super::decode::{value_i64, value_str};
use super::keys::{user_index, SessionKeys};
use super::RedisStore;
use crate::backend::shared::{now_ms, remaining_secs};
use crate::error::Result;
use crate::limits::ListCursor;
use crate::message::{millis_to_datetime, SessionKey};
use crate::store::{SessionPage, SessionStore, SessionSummary};

/// `(member, score)` pairs of a `... WITHSCORES` reply, flat (RESP2) or nested (RESP3).
fn scored(value: Value) -> Vec<(String, i64)> {
    let Value::Array(items) = value else {
        return Vec::new();
    };
    let score = |v: &Value| match v {
        Value::Double(d) => Some(*d as i64),
        other => {
            value_i64(other).or_else(|| value_str(other)?.parse::<f64>().ok().map(|f| f as i64))
        }
    };
    if items.iter().all(|i| matches!(i, Value::Array(_))) {
        items
            .iter()
            .filter_map(|pair| match pair {
                Value::Array(p) => Some((value_str(p.first()?)?.to_string(), score(p.get(1)?)?)),
                _ => None,
            })
            .collect()
    } else {
        items
            .chunks(2)
            .filter_map(|p| Some((value_str(p.first()?)?.to_string(), score(p.get(1)?)?)))
            .collect()
    }
}

impl RedisStore {
    /// See [`SessionStore::list`].
    pub(super) async fn list_page(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        let index = user_index(user);
        let limit = limit.max(1);
        let max = after.map_or_else(|| "+inf".to_string(), |c| c.updated_at_ms.to_string());
        let mut conn = self.connection().await?;
        // limit + 1 members after the cursor: the extra one says whether a next page exists.
        let mut picked: Vec<(String, i64)> = Vec::new();
        let mut offset = 0usize;
        loop {
            let want = limit + 1 - picked.len() + 8;
            let watch = self.target.watch(&conn);
            let reply: Value = watch
                .done(
                    redis::cmd("ZREVRANGEBYSCORE")
                        .arg(&index)
                        .arg(&max)
                        .arg("-inf")
                        .arg("WITHSCORES")
                        .arg("LIMIT")
                        .arg(offset)
                        .arg(want)
                        .query_async(&mut conn)
                        .await,
                )
                .map_err(|e| self.failed(&conn, e))?;
            let batch = scored(reply);
            let got = batch.len();
            for (member, ms) in batch {
                if after.is_some_and(|c| !c.precedes(ms, &member)) {
                    continue;
                }
                picked.push((member, ms));
                if picked.len() > limit {
                    break;
                }
            }
            if picked.len() > limit || got < want {
                break;
            }
            offset += got;
        }
        let next = (picked.len() > limit).then(|| {
            picked.truncate(limit);
            let (session, ms) = &picked[limit - 1];
            ListCursor {
                updated_at_ms: *ms,
                session: session.clone(),
            }
        });
        let mut keys = Vec::with_capacity(picked.len());
        let mut pipe = redis::pipe();
        for (session, _) in &picked {
            let Ok(key) = SessionKey::new(user, session.as_str()) else {
                tracing::warn!(store = %self.url, user, session, "skipping an invalid session name in the index");
                continue;
            };
            let k = SessionKeys::new(&key);
            pipe.cmd("HMGET")
                .arg(&k.hash)
                .arg(&[
                    "count",
                    "bytes",
                    "created_at",
                    "updated_at",
                    "title",
                    "auto",
                ])
                .cmd("PTTL")
                .arg(&k.hash);
            keys.push(key);
        }
        let replies: Vec<Value> = if keys.is_empty() {
            Vec::new()
        } else {
            let watch = self.target.watch(&conn);
            watch
                .done(pipe.query_async(&mut conn).await)
                .map_err(|e| self.failed(&conn, e))?
        };
        let now = now_ms();
        let mut sessions = Vec::with_capacity(keys.len());
        let mut stale = Vec::new();
        for (key, pair) in keys.iter().zip(replies.chunks(2)) {
            let (Some(Value::Array(fields)), Some(pttl)) = (pair.first(), pair.get(1)) else {
                continue;
            };
            let num = |i: usize| fields.get(i).and_then(value_i64);
            if let (Some(count), Some(created), Some(updated)) = (num(0), num(2), num(3)) {
                let pttl = value_i64(pttl).unwrap_or(-1);
                sessions.push(SessionSummary {
                    session: key.session().to_string(),
                    message_count: count.max(0) as u64,
                    bytes: num(1).unwrap_or(0).max(0) as u64,
                    created_at: millis_to_datetime(created),
                    updated_at: millis_to_datetime(updated),
                    ttl_remaining_secs: remaining_secs((pttl >= 0).then(|| now + pttl), now),
                    title: shown_title(fields),
                    tier: None,
                });
                continue;
            }
            // No meta: evicted (the read script rebuilds it from the log) or expired.
            match self.meta(key).await? {
                Some(meta) => sessions.push(SessionSummary {
                    session: key.session().to_string(),
                    message_count: meta.message_count,
                    bytes: meta.bytes,
                    created_at: millis_to_datetime(meta.created_at_ms),
                    updated_at: millis_to_datetime(meta.updated_at_ms),
                    ttl_remaining_secs: meta.ttl_remaining_secs,
                    title: meta.title,
                    tier: None,
                }),
                None => stale.push(key.session().to_string()),
            }
        }
        if !stale.is_empty() {
            // Sessions that expired leave their name in the index; tidy up lazily.
            let removed: redis::RedisResult<i64> = redis::cmd("ZREM")
                .arg(&index)
                .arg(&stale)
                .query_async(&mut conn)
                .await;
            if let Err(e) = removed {
                tracing::debug!(store = %self.url, error = %e, "could not tidy the session index");
            }
        }
        Ok(SessionPage { sessions, next })
    }
}

/// The title shown for a session from its meta fields `[.., .., .., .., title, auto]`:
/// the given one, else the automatic one (see `shown_title` in `repair.lua`).
fn shown_title(fields: &[Value]) -> Option<String> {
    let text = |i: usize| fields.get(i).and_then(value_str).map(str::to_string);
    text(4).or_else(|| text(5).filter(|auto| !auto.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn scores_come_flat_or_nested() {
        let flat = Value::Array(vec![bulk("b"), bulk("20"), bulk("a"), bulk("10")]);
        let nested = Value::Array(vec![
            Value::Array(vec![bulk("b"), Value::Double(20.0)]),
            Value::Array(vec![bulk("a"), Value::Double(10.0)]),
        ]);
        let want = vec![("b".to_string(), 20), ("a".to_string(), 10)];
        assert_eq!(scored(flat), want);
        assert_eq!(scored(nested), want);
        assert!(scored(Value::Nil).is_empty());
    }
}
