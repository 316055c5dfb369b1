//! Search in an SQLite file: an FTS5 `MATCH` restricted to the caller's scope token
//! (their user, or one of their sessions: [`super::schema::scope_tokens`]), ranked by
//! `bm25` over the message text, paged after a [`SearchCursor`].
//!
//! The score is `-bm25` (higher is better). FTS5 computes it with the statistics of
//! the whole index, every user's messages included: the value moves a little as
//! anyone writes (paging is stable while nobody does), and says nothing about which
//! messages other users hold.

use rusqlite::{params, Connection};

use super::rows::decode_row;
use super::schema::scope_tokens;
use crate::search::snippet::snippet;
use crate::search::terms::Terms;
use crate::search::{SearchHit, SearchPage, SearchQuery};

/// The FTS5 query for `terms` in `scope`: every term quoted (no query syntax gets
/// through), any of them in the body.
fn match_expression(scope: &str, terms: &Terms) -> String {
    let any: Vec<String> = terms
        .words()
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    format!("scope : \"{scope}\" AND body : ({})", any.join(" OR "))
}

/// One page of `user`'s hits for `query`, best first.
pub(super) fn search_page(
    conn: &Connection,
    user: &str,
    query: &SearchQuery,
) -> rusqlite::Result<SearchPage> {
    let terms = Terms::of(&query.text);
    if terms.is_empty() {
        return Ok(SearchPage::default());
    }
    let scope = scope_tokens(user, query.session.as_deref());
    let expression = match_expression(&scope, &terms);
    // The page is chosen from the index and the id table alone; only its rows are then
    // read from `messages` (a common word may match most of a user's messages).
    let mut stmt = conn.prepare_cached(
        "SELECT m.seq, m.id, m.role, m.content, m.sources, m.created_at, m.status,
                m.session, h.score
           FROM (SELECT d.user, d.session, d.seq, f.score
                   FROM (SELECT rowid AS docid, -bm25(message_search, 0.0, 1.0) AS score
                           FROM message_search WHERE message_search MATCH ?1) f
                   JOIN message_search_ids d ON d.docid = f.docid
                  WHERE d.user = ?2
                    AND (?3 = 0 OR f.score < ?4
                         OR (f.score = ?4 AND (d.session > ?5 OR (d.session = ?5 AND d.seq > ?6))))
                  ORDER BY f.score DESC, d.session, d.seq
                  LIMIT ?7) h
           JOIN messages m ON m.user = h.user AND m.session = h.session AND m.seq = h.seq
          ORDER BY h.score DESC, h.session, h.seq",
    )?;
    let cursor = query.cursor.as_ref();
    let rows = stmt.query_map(
        params![
            expression,
            user,
            i64::from(cursor.is_some()),
            cursor.map_or(0.0, |c| c.score),
            cursor.map_or("", |c| c.session.as_str()),
            cursor.map_or(0, |c| c.seq.min(i64::MAX as u64) as i64),
            (query.limit + 1) as i64,
        ],
        |row| {
            let session: String = row.get(7)?;
            let score: f64 = row.get(8)?;
            Ok(decode_row(row)?.map(|(seq, message)| (session, score, seq, message)))
        },
    )?;
    let mut hits = Vec::new();
    for row in rows {
        match row? {
            Ok((session, score, seq, message)) => hits.push(SearchHit {
                session,
                message_id: message.id,
                seq,
                role: message.role,
                created_at: message.created_at,
                snippet: if query.snippets {
                    snippet(&message.content, &terms)
                } else {
                    String::new()
                },
                content: message.content,
                score,
            }),
            Err(bad) => {
                tracing::warn!(user, seq = ?bad.seq, reason = %bad.reason, "a search skipped a corrupt stored message");
            }
        }
    }
    Ok(SearchPage::of(hits, query.limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_quotes_every_term() {
        let terms = Terms::of(r#"backup "NEAR" *"#);
        assert_eq!(
            match_expression("u419", &terms),
            r#"scope : "u419" AND body : ("backup" OR "near")"#
        );
    }
}
