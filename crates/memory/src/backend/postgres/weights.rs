//! How much each search term weighs: `idf = ln(1 + 1/f)`, from the share `f` of rows
//! holding the term's lexeme in PostgreSQL's own statistics of the `search_terms`
//! column (`pg_stats.most_common_elems`, kept by ANALYZE / autovacuum). A lexeme not
//! among them is rarer than the rarest listed: half its share.
//!
//! The statistics are read once a minute per store, not by every search: reading and
//! parsing the list (a thousand lexemes) in the search's own statement took about a
//! millisecond of every search, and planning that statement (the `pg_stats` view joins
//! four catalogs) about as much again. Until the column has statistics, every term weighs 1 and nothing is kept, so the
//! first ANALYZE counts at the next search.
//!
//! The lexeme of a term is computed here as PostgreSQL's English configuration does
//! (`english_stem`, Snowball's English stemmer, for words of letters; the word itself when
//! it holds a digit). Should the two ever disagree on a word, the word only weighs as a
//! rare one: the search's results stay exact for the weights it used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::GenericClient;

use crate::search::terms::stem;

/// How long statistics read from the database are used before they are read again.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// Shares of rows holding the column's most common lexemes.
#[derive(Debug, Default)]
pub(super) struct Statistics {
    shares: HashMap<String, f64>,
    /// The share assumed for any other lexeme.
    rest: f64,
}

impl Statistics {
    /// From `pg_stats`: the lexemes and their frequencies, which PostgreSQL follows with
    /// the lowest and the highest of them (and may follow with more).
    pub(super) fn new(lexemes: Vec<String>, frequencies: &[f32]) -> Option<Statistics> {
        let lowest = f64::from(*frequencies.get(lexemes.len())?);
        let shares = lexemes
            .into_iter()
            .zip(frequencies.iter().map(|&f| f64::from(f)))
            .collect();
        Some(Statistics {
            shares,
            rest: lowest / 2.0,
        })
    }

    fn idf(&self, lexeme: &str) -> f64 {
        let share = self.shares.get(lexeme).copied().unwrap_or(self.rest);
        if share > 0.0 {
            (1.0 + 1.0 / share).ln()
        } else {
            1.0
        }
    }
}

/// The lexeme PostgreSQL's English configuration makes of a lowercase term.
pub(super) fn lexeme(term: &str) -> String {
    if term.chars().all(char::is_alphabetic) {
        stem(term)
    } else {
        term.to_string()
    }
}

/// The weight of each of `terms` (1 each without statistics).
pub(super) fn weights(stats: Option<&Statistics>, terms: &[String]) -> Vec<f64> {
    terms
        .iter()
        .map(|t| stats.map_or(1.0, |s| s.idf(&lexeme(t))))
        .collect()
}

/// A store's statistics, read again once [`FRESH_FOR`] has passed.
#[derive(Default)]
pub(super) struct Cache {
    kept: Mutex<Option<(Instant, Arc<Statistics>)>>,
}

impl Cache {
    /// The statistics, from the cache or read now (`None`: the column has none yet).
    pub(super) async fn get(
        &self,
        client: &impl GenericClient,
    ) -> Result<Option<Arc<Statistics>>, tokio_postgres::Error> {
        if let Some((read, stats)) = &*self.kept.lock().expect("weights cache") {
            if read.elapsed() < FRESH_FOR {
                return Ok(Some(Arc::clone(stats)));
            }
        }
        let stats = read(client).await?.map(Arc::new);
        if let Some(stats) = &stats {
            *self.kept.lock().expect("weights cache") = Some((Instant::now(), Arc::clone(stats)));
        }
        Ok(stats)
    }
}

async fn read(client: &impl GenericClient) -> Result<Option<Statistics>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs
               FROM pg_stats
              WHERE schemaname = current_schema() AND tablename = 'ragchat_messages'
                AND attname = 'search_terms' AND most_common_elems IS NOT NULL
              LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.and_then(|row| Statistics::new(row.get(0), &row.get::<_, Vec<f32>>(1))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_lexemes_weigh_by_their_share_and_others_as_rarer_than_all() {
        let stats = Statistics::new(
            vec!["meet".into(), "zephyrin".into()],
            &[0.5, 0.01, 0.01, 0.5],
        )
        .unwrap();
        let w = weights(
            Some(&stats),
            &["meeting".into(), "zephyrine".into(), "quokka".into()],
        );
        assert!((w[0] - 3f64.ln()).abs() < 1e-6, "{w:?}");
        assert!((w[1] - 101f64.ln()).abs() < 1e-4, "{w:?}");
        assert!((w[2] - 201f64.ln()).abs() < 1e-4, "{w:?}");
        assert_eq!(weights(None, &["meeting".into()]), [1.0]);
    }

    #[test]
    fn statistics_without_their_bounds_are_none() {
        assert!(Statistics::new(vec!["a".into()], &[0.5]).is_none());
    }

    #[test]
    fn words_with_digits_are_not_stemmed() {
        assert_eq!(lexeme("running"), "run");
        assert_eq!(lexeme("covid19s"), "covid19s");
        assert_eq!(lexeme("2024"), "2024");
    }

    /// The lexemes made here are PostgreSQL's, for every word of the bundled articles
    /// (ASCII: a database in the C locale splits words at other letters).
    #[test]
    fn lexemes_are_the_english_configurations() {
        let Some(server) = ragchat_testkit::postgres_or_skip() else {
            return;
        };
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus");
        let mut words = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&corpus).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for (_, word) in crate::search::terms::words(&text) {
                if word.is_ascii() {
                    words.insert(word.to_ascii_lowercase());
                }
            }
        }
        assert!(words.len() > 3000, "{} words", words.len());
        let list: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let out = server.psql(
            "postgres",
            &format!(
                "SELECT t || '=' || array_to_string(tsvector_to_array(to_tsvector('english', t)), ',')
                   FROM unnest(ARRAY[{}]) AS t",
                list.join(",")
            ),
        );
        let mut differ = Vec::new();
        let mut compared = 0;
        for line in out.lines() {
            let (word, theirs) = line.split_once('=').unwrap();
            if theirs.is_empty() {
                continue; // a stop word: it weighs 0 in the statement itself
            }
            compared += 1;
            if lexeme(word) != theirs {
                differ.push(format!("{word}: {} against {theirs}", lexeme(word)));
            }
        }
        assert!(compared > 3000, "{compared} compared");
        assert!(
            differ.is_empty(),
            "{} of {compared} differ: {differ:?}",
            differ.len()
        );
    }
}
