//! Search in PostgreSQL: the caller's scope lexeme AND any of the query's terms against
//! the generated `search_terms` column (GIN), ranked BM25-like, paged after a
//! [`SearchCursor`]; the matches of the most common term are read only when the other
//! terms' matches cannot fill the page alone (see [`search_sql`]). Terms are letters and
//! digits only, so nothing in them is tsquery syntax.
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

/// The search for `terms` terms (1 to [`MAX_TERMS`](crate::search::terms::MAX_TERMS);
/// one prepared statement per count).
///
/// Candidates: the caller's messages that hold any term (GIN: the scope lexeme AND any
/// term). Score: BM25-like, `sum over terms of idf * tf / (tf + 1.2)`, with `tf` from
/// `ts_rank_cd` of the term alone (about a tenth per occurrence, cover density; at most
/// [`TF_CAP`]) and `idf = ln(1 + 1/f)` from the share `f` of rows holding the term's lexeme in
/// PostgreSQL's own statistics of the column (`pg_stats.most_common_elems`, kept by
/// ANALYZE / autovacuum; a lexeme not among them is rarer than the rarest listed).
/// Without statistics yet, every term weighs 1; a term the English configuration drops
/// weighs 0 (and is looked up as `@`, a lexeme no message holds).
///
/// Pruning (MaxScore): most searches pair a common word with rarer ones. The page is
/// first taken among the messages holding any term but the most common one (`pruned`);
/// when that fills the page and its last hit scores above the most the common term can
/// add to a score (`idf * TF_CAP / (TF_CAP + 1.2)`), no message holding only the
/// common term can be on the page, and its many matches are never read. Otherwise
/// (one term, tied weights, too few rarer matches) the full search runs, in the same
/// statement: each branch is under a one-time filter, so only one is read.
///
/// The weights are computed once per search (`MATERIALIZED`: inlined, they were
/// recomputed for every candidate row) and the score inline from one array per search
/// (a per-row subquery over the terms cost about as much again as finding the rows).
/// The scope lexeme restricts the rows to the caller's; `user_id` is checked again on
/// each row, written so that the planner does not also read the primary key for it
/// (a BitmapAnd with all the user's rows: 9 of 44 ms for a user with 100,000).
fn search_sql(terms: usize) -> String {
    let tf: Vec<String> = (1..=terms)
        .map(|i| {
            format!(
                "LEAST(ts_rank_cd(m.search_terms, w.q[{i}])::float8 * 10, {TF_CAP:.1}) AS tf{i}"
            )
        })
        .collect();
    let score: Vec<String> = (1..=terms)
        .map(|i| format!("w.idf[{i}] * r.tf{i} / (r.tf{i} + 1.2)"))
        .collect();
    // The page among the caller's messages holding any term of `terms` (a CTE).
    let page = |terms: &str| {
        format!(
            "SELECT seq, id, role, content, sources, created_at, status, session_id, score FROM (
        SELECT m.seq, m.id, m.role, m.content, m.sources, m.created_at, m.status,
               m.session_id, {score} AS score
          FROM ragchat_messages m, {terms} q, w,
               LATERAL (SELECT {tf}) r
         WHERE (m.user_id || '') = $1
           AND ($3::text IS NULL OR m.session_id = $3::text)
           AND numnode(q.any_term) > 0
           AND m.search_terms @@ (q.any_term && $4::text::tsquery)
    ) h
    WHERE ($5::float8 IS NULL OR score < $5::float8
           OR (score = $5::float8 AND (session_id > $6::text
                                       OR (session_id = $6::text AND seq > $7::bigint))))
    ORDER BY score DESC, session_id, seq
    LIMIT $8",
            score = score.join(" + "),
            tf = tf.join(", "),
        )
    };
    format!(
        "
WITH stats AS MATERIALIZED (
    SELECT most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs
      FROM pg_stats
     WHERE schemaname = current_schema() AND tablename = 'ragchat_messages'
       AND attname = 'search_terms'
     LIMIT 1
),
terms AS (
    SELECT n, to_tsquery('english', t) AS q,
           (tsvector_to_array(to_tsvector('english', t)))[1] AS lexeme
      FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n)
),
w AS MATERIALIZED (
    SELECT array_agg(CASE WHEN numnode(t.q) > 0 THEN t.q ELSE '''@'''::tsquery END
                     ORDER BY t.n) AS q,
           array_agg(CASE WHEN numnode(t.q) = 0 THEN 0.0::float8
                          WHEN s.elems IS NULL THEN 1.0::float8
                          ELSE ln(1.0 + 1.0 / coalesce(s.freqs[array_position(s.elems, t.lexeme)],
                                                       s.freqs[cardinality(s.elems) + 1] / 2.0))
                     END ORDER BY t.n) AS idf
      FROM terms t LEFT JOIN stats s ON true
),
common AS MATERIALIZED (
    SELECT x.n, x.v FROM w, unnest(w.idf) WITH ORDINALITY AS x(v, n) ORDER BY x.v, x.n LIMIT 1
),
rarer AS (
    SELECT u.t FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n), common, w
     WHERE u.n <> common.n
       AND common.v < (SELECT min(x.v) FROM unnest(w.idf) WITH ORDINALITY AS x(v, n)
                        WHERE x.n <> common.n)
),
rarer_terms AS (
    SELECT to_tsquery('english', coalesce(array_to_string(array(SELECT t FROM rarer), ' | '), ''))
           AS any_term
),
all_terms AS (
    SELECT to_tsquery('english', array_to_string($2::text[], ' | ')) AS any_term
),
pruned AS MATERIALIZED (
    {pruned}
),
exact AS MATERIALIZED (
    SELECT count(*) = $8 AND min(pruned.score) > (SELECT v FROM common) * {bound_factor} AS yes
      FROM pruned
)
SELECT * FROM pruned WHERE (SELECT yes FROM exact)
UNION ALL
SELECT * FROM (
    {full}
) f WHERE NOT (SELECT yes FROM exact)
ORDER BY score DESC, session_id, seq",
        pruned = page("rarer_terms"),
        full = page("all_terms"),
        bound_factor = TF_CAP / (TF_CAP + 1.2),
    )
}

/// The most a term's frequency counts (about three occurrences): BM25 already saturates
/// (three occurrences score 0.71 of the most, ten 0.89), and the cap bounds what a term
/// can add to a score, which pruning needs (see [`search_sql`]).
const TF_CAP: f64 = 3.0;

/// The rows of one search (see [`search_sql`]), best first, at most `query.limit + 1`.
async fn run(
    client: &impl GenericClient,
    user: &str,
    query: &SearchQuery,
    terms: &Terms,
) -> PgResult<Vec<tokio_postgres::Row>> {
    let stmt = client
        .prepare_cached(&search_sql(terms.words().len()))
        .await?;
    let cursor = query.cursor.as_ref();
    client
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
        .await
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
    let rows = run(client, user, query, &terms).await?;
    let mut hits = Vec::with_capacity(rows.len());
    for row in &rows {
        match decode_row(row) {
            Ok((seq, message)) => hits.push(SearchHit {
                session: row.get(7),
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
                score: row.get(8),
            }),
            Err(bad) => {
                tracing::warn!(user, seq = ?bad.seq, reason = %bad.reason, "a search skipped a corrupt stored message");
            }
        }
    }
    Ok(SearchPage::of(hits, query.limit))
}
