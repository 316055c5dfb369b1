//! Search in PostgreSQL: the caller's scope lexeme AND any of the query's terms against
//! the generated `search_terms` column (GIN), ranked BM25-like, paged after a
//! [`SearchCursor`]; the matches of the most common term are read only when the other
//! terms' matches cannot fill the page alone (see [`search_sql`]). Terms are letters and
//! digits only, so nothing in them is tsquery syntax.
//!
//! PostgreSQL's own ranking (`ts_rank_cd`) weighs every term the same: "go" as much as
//! "Sintra", so a message saying "go" twice outranked the one that names the place
//! (recall@5 on the evaluation set was 0.79 with it). The term weights come from the
//! column's statistics, which cover every user's messages: like SQLite's `bm25`, a score
//! moves a little when statistics are refreshed (read again once a minute, [`weights`];
//! paging is stable in between) and says nothing about which messages other users hold.

use std::sync::OnceLock;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::rows::decode_row;
use super::schema::scope_lexeme;
use super::weights;
use crate::search::snippet::snippet;
use crate::search::terms::{Terms, MAX_TERMS};
use crate::search::{SearchHit, SearchPage, SearchQuery};

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// The search for `terms` terms (1 to [`MAX_TERMS`](crate::search::terms::MAX_TERMS)) read
/// as `plan` says ([`Plan`]); one prepared statement per count and plan.
///
/// Candidates: the caller's messages that hold any term (GIN: the scope lexeme AND any
/// term). Score: BM25-like, `sum over terms of idf * tf / (tf + 1.2)`, with `tf` the
/// term's occurrences (at most [`TF_CAP`], read from its `ts_rank`: [`saturated_tf`]) and
/// `idf` given by the caller ([`weights`]); a term the English configuration drops
/// weighs 0 (and is looked up as `@`, a lexeme no message holds).
///
/// Pruned (MaxScore): most searches pair a common word with rarer ones. The page is
/// first taken among the messages holding any of the rarer terms ($10); when that fills
/// the page and its last hit scores above the most the common term can add to a score
/// ($11: `idf * TF_CAP / (TF_CAP + 1.2)`), no message holding only the common term can be
/// on the page, and its many matches are never read. Otherwise the whole search runs, in
/// the same statement: each branch is under a one-time filter, so only one is read. A
/// search that need not be exhaustive ([`SearchQuery::exhaustive`]) takes a full page of
/// the rarer terms' matches as it is ([`Plan::Rarer`], then [`Plan::Whole`] if they
/// cannot fill it).
///
/// The per-term queries and weights are made once per search (`MATERIALIZED`: inlined,
/// they were recomputed for every candidate row) and the score inline from them (a
/// per-row subquery over the terms cost about as much again as finding the rows); each
/// term's rank is taken once per row (`OFFSET 0` keeps the planner from pasting it into
/// the score twice, which cost a sixth of a search). The scope lexeme restricts the rows
/// to the caller's; `user_id` is checked again on each row, written so that the planner
/// does not also read the primary key for it (a BitmapAnd with all the user's rows: 9 of
/// 44 ms for a user with 100,000).
fn search_sql(terms: usize, plan: Plan) -> String {
    let rank: Vec<String> = (1..=terms)
        .map(|i| format!("ts_rank(m.search_terms, w.q[{i}]) AS rk{i}"))
        .collect();
    let score: Vec<String> = (1..=terms)
        .map(|i| format!("w.idf[{i}] * {}", saturated_tf(&format!("r.rk{i}"))))
        .collect();
    // The page among the caller's messages holding any of the terms in `any` (text[]).
    let page = |any: &str| {
        format!(
            "SELECT seq, id, role, content, sources, created_at, status, session_id, score FROM (
        SELECT m.seq, m.id, m.role, m.content, m.sources, m.created_at, m.status,
               m.session_id, {score} AS score
          FROM ragchat_messages m,
               (SELECT to_tsquery('english', array_to_string({any}, ' | ')) AS any_term) q, w,
               LATERAL (SELECT {rank} OFFSET 0) r
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
            rank = rank.join(", "),
        )
    };
    let weighted = "
WITH w AS MATERIALIZED (
    SELECT array_agg(CASE WHEN numnode(t.q) > 0 THEN t.q ELSE '''@'''::tsquery END
                     ORDER BY t.n) AS q,
           array_agg(CASE WHEN numnode(t.q) > 0 THEN ($9::float8[])[t.n] ELSE 0.0::float8 END
                     ORDER BY t.n) AS idf
      FROM (SELECT n, to_tsquery('english', u.t) AS q
              FROM unnest($2::text[]) WITH ORDINALITY AS u(t, n)) t
)";
    match plan {
        Plan::Whole => format!("{weighted}\n{}", page("$2::text[]")),
        Plan::Rarer => format!("{weighted}\n{}", page("$10::text[]")),
        Plan::Pruned => format!(
            "{weighted},
pruned AS MATERIALIZED (
    {pruned}
),
exact AS MATERIALIZED (
    SELECT count(*) = $8 AND min(pruned.score) > $11::float8 AS yes FROM pruned
)
SELECT * FROM pruned WHERE (SELECT yes FROM exact)
UNION ALL
SELECT * FROM (
    {whole}
) f WHERE NOT (SELECT yes FROM exact)
ORDER BY score DESC, session_id, seq",
            pruned = page("$10::text[]"),
            whole = page("$2::text[]"),
        ),
    }
}

/// The text of [`search_sql`], made once per term count and plan (the connection's
/// statement cache is keyed by it; building it for every search was wasted work).
fn statement(terms: usize, plan: Plan) -> &'static str {
    static MADE: [[OnceLock<String>; 3]; MAX_TERMS] =
        [const { [const { OnceLock::new() }; 3] }; MAX_TERMS];
    let slot = match plan {
        Plan::Whole => 0,
        Plan::Pruned => 1,
        Plan::Rarer => 2,
    };
    MADE[terms - 1][slot].get_or_init(|| search_sql(terms, plan))
}

/// How a search reads its candidates (see [`search_sql`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    /// Every message holding any term.
    Whole,
    /// First the messages holding a rarer term than the most common one, then every
    /// message unless those made the page.
    Pruned,
    /// Only the messages holding a rarer term than the most common one.
    Rarer,
}

/// The most occurrences of a term that count: BM25 already saturates (three occurrences
/// score 0.71 of the most, ten 0.89), and the cap bounds what a term can add to a score,
/// which pruning needs (see [`search_sql`]).
const TF_CAP: u32 = 3;

/// BM25's `tf / (tf + 1.2)` of a term's occurrences in a message (at most [`TF_CAP`]),
/// as SQL over `rank`, the term's `ts_rank` in it.
///
/// `ts_rank` of one term is a function of its occurrences alone (`0.1 * sum of 1/j^2 for
/// j <= n`, over pi^2 / 6; every lexeme here has the default weight), so the count is
/// read back from it. It costs a third of `ts_rank_cd` (whose cover density of one term
/// is a tenth per occurrence), which took about half the time of a search that ranks a
/// thousand matches.
fn saturated_tf(rank: &str) -> String {
    let rank_of = |n: u32| {
        0.1 * (1..=n).map(|j| 1.0 / f64::from(j * j)).sum::<f64>()
            / (std::f64::consts::PI.powi(2) / 6.0)
    };
    let mut sql = format!("CASE WHEN {rank} < {:.6} THEN 0.0", rank_of(1) / 2.0);
    for n in 1..TF_CAP {
        let between = (rank_of(n) + rank_of(n + 1)) / 2.0;
        sql += &format!(" WHEN {rank} < {between:.6} THEN {}", saturation(n));
    }
    sql + &format!(" ELSE {} END", saturation(TF_CAP))
}

/// BM25's `tf / (tf + 1.2)`, as an SQL literal.
fn saturation(tf: u32) -> String {
    format!("{:.17}::float8", f64::from(tf) / (f64::from(tf) + 1.2))
}

/// Which term is the most common (the lowest weight, the first of equals), when it weighs
/// strictly less than every other: pruning it can pay. With tied weights (terms PostgreSQL
/// knows no more of than that they are rare) nothing can be pruned.
fn most_common(idf: &[f64]) -> Option<usize> {
    let (common, lowest) = idf.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1))?;
    let others = idf.iter().enumerate().filter(|&(i, _)| i != common);
    others
        .map(|(_, v)| *v)
        .reduce(f64::min)
        .filter(|next| lowest < next)
        .map(|_| common)
}

/// The rows of one search (see [`search_sql`]), best first, at most `query.limit + 1`.
async fn run(
    client: &impl GenericClient,
    cache: &weights::Cache,
    user: &str,
    query: &SearchQuery,
    terms: &Terms,
) -> PgResult<Vec<tokio_postgres::Row>> {
    let stats = cache.get(client).await?;
    let words = terms.words();
    let idf = weights::weights(stats.as_deref(), words);
    let common = most_common(&idf);
    let cursor = query.cursor.as_ref();
    let scope = scope_lexeme(user, query.session.as_deref());
    let score = cursor.map(|c| c.score);
    let after_session = cursor.map_or("", |c| c.session.as_str());
    let after_seq = cursor.map_or(0i64, |c| c.seq.min(i64::MAX as u64) as i64);
    let limit = (query.limit + 1) as i64;
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &user,
        &words,
        &query.session,
        &scope,
        &score,
        &after_session,
        &after_seq,
        &limit,
        &idf,
    ];
    let Some(common) = common else {
        return page(client, words.len(), Plan::Whole, &params).await;
    };
    let rarer: Vec<&str> = (words.iter().enumerate())
        .filter(|&(i, _)| i != common)
        .map(|(_, w)| w.as_str())
        .collect();
    params.push(&rarer);
    if !query.exhaustive {
        // A full page of the rarer terms' matches is enough; the whole search only
        // when they cannot fill it (two statements: each plans in half the time of
        // the one holding both, and the second is rarely needed).
        let rows = page(client, words.len(), Plan::Rarer, &params).await?;
        if rows.len() as i64 == limit {
            return Ok(rows);
        }
        params.pop();
        return page(client, words.len(), Plan::Whole, &params).await;
    }
    let bound = idf[common] * f64::from(TF_CAP) / (f64::from(TF_CAP) + 1.2);
    params.push(&bound);
    page(client, words.len(), Plan::Pruned, &params).await
}

/// Runs the search statement for `terms` terms and `plan` with `params`.
async fn page(
    client: &impl GenericClient,
    terms: usize,
    plan: Plan,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<Vec<tokio_postgres::Row>> {
    let stmt = client.prepare_cached(statement(terms, plan)).await?;
    client.query(&stmt, params).await
}

/// One page of `user`'s hits for `query`, best first.
pub(super) async fn search_page(
    client: &impl GenericClient,
    cache: &weights::Cache,
    user: &str,
    query: &SearchQuery,
) -> PgResult<SearchPage> {
    let terms = Terms::of(&query.text);
    if terms.is_empty() {
        return Ok(SearchPage::default());
    }
    let rows = run(client, cache, user, query, &terms).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_common_term_is_pruned_only_when_it_weighs_less_than_every_other() {
        assert_eq!(most_common(&[6.2, 4.7]), Some(1));
        assert_eq!(most_common(&[3.0, 5.0, 4.0]), Some(0));
        assert_eq!(most_common(&[5.0, 5.0]), None);
        assert_eq!(most_common(&[4.0, 4.0, 6.0]), None);
        assert_eq!(most_common(&[4.0]), None);
    }

    /// The occurrences read back from `ts_rank` are the occurrences, for 0 to 8 of them
    /// and with other words around, as PostgreSQL ranks them.
    #[test]
    fn saturation_is_read_from_the_rank_of_each_count() {
        let Some(server) = ragchat_testkit::postgres_or_skip() else {
            return;
        };
        let out = server.psql(
            "postgres",
            &format!(
                "SELECT n, {} FROM generate_series(0, 8) AS n,
                        LATERAL (SELECT ts_rank(to_tsvector('english',
                                    'quokka ' || repeat('zephyr meets quokka ', n)),
                                    to_tsquery('english', 'zephyr')) AS rk) r
                  ORDER BY n",
                saturated_tf("r.rk")
            ),
        );
        let got: Vec<f64> = out
            .lines()
            .map(|l| l.split_once('|').unwrap().1.parse().unwrap())
            .collect();
        let want: Vec<f64> = (0..=8u32)
            .map(|n| {
                let tf = f64::from(n.min(TF_CAP));
                tf / (tf + 1.2)
            })
            .collect();
        assert_eq!(got.len(), want.len(), "{out}");
        for (n, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-12, "{n} occurrences: {g} against {w}");
        }
    }
}
