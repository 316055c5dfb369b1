//! Search in PostgreSQL: the caller's scope lexeme AND any of the query's terms against
//! the generated `search_terms` column (GIN), ranked BM25-like (see [`SEARCH_SQL`]),
//! paged after a [`SearchCursor`]. Terms are letters and digits only, so nothing in
//! them is tsquery syntax.
//!
//! `ts_rank_cd` alone weighs every term the same: "go" as much as "Sintra", so a
//! message saying "go" twice outranks the one that names the place (recall@5 on the
//! evaluation set was 0.79 with it). The term weights come from the column's
//! statistics, which cover every user's messages: like SQLite's `bm25`, a score moves a
//! little when statistics are refreshed (paging is stable in between) and says nothing
//! about which messages other users hold.

use deadpool_postgres::GenericClient;

use super::rows::decode_row;
use super::schema::scope_lexeme;
use crate::search::snippet::snippet;
use crate::search::terms::Terms;
use crate::search::{SearchHit, SearchPage, SearchQuery};

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// Candidates: the caller's messages that hold any term (GIN: the scope lexeme AND any
/// term). Score: BM25-like, `sum over terms of idf * tf / (tf + 1.2)`, with `tf` from
/// `ts_rank_cd` of the term alone (about a tenth per occurrence, cover density) and
/// `idf = ln(1 + 1/f)` from the share `f` of rows holding the term's lexeme in
/// PostgreSQL's own statistics of the column (`pg_stats.most_common_elems`, kept by
/// ANALYZE / autovacuum; a lexeme not among them is rarer than the rarest listed).
/// Without statistics yet, every term weighs 1.
///
/// The scope lexeme restricts the rows to the caller's; `user_id` is checked again on
/// each row, written so that the planner does not also read the primary key for it
/// (a BitmapAnd with all the user's rows: 9 of 44 ms for a user with 100,000).
const SEARCH_SQL: &str = "
WITH stats AS MATERIALIZED (
    SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs
      FROM pg_stats
     WHERE schemaname = current_schema() AND tablename = 'ragchat_messages'
       AND attname = 'search_terms'
     LIMIT 1
),
terms AS (
    SELECT to_tsquery('english', t) AS q,
           (tsvector_to_array(to_tsvector('english', t)))[1] AS lexeme
      FROM unnest($2::text[]) AS t
),
weighted AS MATERIALIZED (
    SELECT t.q,
           CASE WHEN s.elems IS NULL THEN 1.0::float8
                ELSE ln(1.0 + 1.0 / coalesce(s.freqs[array_position(s.elems, t.lexeme)],
                                             s.freqs[cardinality(s.elems) + 1] / 2.0))::float8
           END AS idf
      FROM terms t LEFT JOIN stats s ON true
     WHERE numnode(t.q) > 0
),
query AS (
    SELECT to_tsquery('english', array_to_string($2::text[], ' | ')) AS any_term
)
SELECT seq, id, role, content, sources, created_at, status, session_id, score FROM (
    SELECT m.seq, m.id, m.role, m.content, m.sources, m.created_at, m.status, m.session_id,
           (SELECT coalesce(sum(w.idf * r.tf / (r.tf + 1.2)), 0)
              FROM weighted w,
                   LATERAL (SELECT ts_rank_cd(m.search_terms, w.q)::float8 * 10 AS tf) r
           ) AS score
      FROM ragchat_messages m, query
     WHERE (m.user_id || '') = $1
       AND ($3::text IS NULL OR m.session_id = $3::text)
       AND numnode(query.any_term) > 0
       AND m.search_terms @@ (query.any_term && $4::text::tsquery)
) h
WHERE ($5::float8 IS NULL OR score < $5::float8
       OR (score = $5::float8 AND (session_id > $6::text
                                   OR (session_id = $6::text AND seq > $7::bigint))))
ORDER BY score DESC, session_id, seq
LIMIT $8";

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
                &terms.words(),
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
