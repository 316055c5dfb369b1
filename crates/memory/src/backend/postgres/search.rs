//! Search in PostgreSQL: the caller's scope lexeme AND any of the query's terms against
//! the generated `search_terms` column (GIN), ranked by `ts_rank_cd` (cover density:
//! more of the terms, closer together, rank higher), paged after a [`SearchCursor`].
//! The rank depends on the message alone, so paging is stable and says nothing of
//! other users' messages.

use deadpool_postgres::GenericClient;

use super::rows::decode_row;
use super::schema::scope_lexeme;
use crate::search::snippet::snippet;
use crate::search::terms::Terms;
use crate::search::{SearchHit, SearchPage, SearchQuery};

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

const SEARCH_SQL: &str = "
SELECT seq, id, role, content, sources, created_at, status, session_id, score FROM (
    SELECT m.seq, m.id, m.role, m.content, m.sources, m.created_at, m.status, m.session_id,
           ts_rank_cd(m.search_terms, q.terms)::float8 AS score
      FROM ragchat_messages m,
           (SELECT to_tsquery('english', $2::text) AS terms) q
     WHERE m.user_id = $1
       AND ($3::text IS NULL OR m.session_id = $3::text)
       AND numnode(q.terms) > 0
       AND m.search_terms @@ (q.terms && $4::text::tsquery)
) h
WHERE ($5::float8 IS NULL OR score < $5::float8
       OR (score = $5::float8 AND (session_id > $6::text
                                   OR (session_id = $6::text AND seq > $7::bigint))))
ORDER BY score DESC, session_id, seq
LIMIT $8";

/// The `to_tsquery` input for `terms`: any of them. Terms are letters and digits
/// only, so nothing in them is tsquery syntax.
fn any_of(terms: &Terms) -> String {
    terms.words().join(" | ")
}

/// One page of `user`'s hits for `query`, best first.
pub(super) async fn search_page(
    client: &impl GenericClient,
    user: &str,
    query: &SearchQuery,
) -> PgResult<SearchPage> {
    let terms = Terms::of(&query.text);
    if terms.is_empty() {
        return Ok(SearchPage::default());
    }
    let stmt = client.prepare_cached(SEARCH_SQL).await?;
    let cursor = query.cursor.as_ref();
    let rows = client
        .query(
            &stmt,
            &[
                &user,
                &any_of(&terms),
                &query.session,
                &scope_lexeme(user, query.session.as_deref()),
                &cursor.map(|c| c.score),
                &cursor.map_or("", |c| c.session.as_str()),
                &cursor.map_or(0i64, |c| c.seq.min(i64::MAX as u64) as i64),
                &((query.limit + 1) as i64),
            ],
        )
        .await?;
    let mut hits = Vec::with_capacity(rows.len());
    for row in &rows {
        match decode_row(row) {
            Ok((seq, message)) => hits.push(SearchHit {
                session: row.get(7),
                message_id: message.id,
                seq,
                role: message.role,
                created_at: message.created_at,
                snippet: snippet(&message.content, &terms),
                score: row.get(8),
            }),
            Err(bad) => {
                tracing::warn!(user, seq = ?bad.seq, reason = %bad.reason, "a search skipped a corrupt stored message");
            }
        }
    }
    Ok(SearchPage::of(hits, query.limit))
}
