//! History-aware retrieval: a message plus recent turns becomes a weighted BM25 query.
//!
//! A follow-up such as "How does it learn?" or "What about neural networks?" says little on its
//! own. [`plan_query`] classifies the message ([`MessageKind`]); a follow-up borrows the topic
//! terms of recent user turns, back to the last self-contained question, at weights below the message's
//! own terms, so the new words steer and the history only breaks ties. With the index at hand,
//! [`Retriever::search`] borrows only specific terms (the rarest few of each turn, none that most
//! chunks share) and treats a message made only of generic words ("Can you give me an example?")
//! as a follow-up. Standalone questions borrow too, at a lower weight.

mod next;
mod query;

use std::collections::HashMap;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::schema::Value;
use tantivy::{DocAddress, TantivyDocument};

use ragchat_core::Role;

use crate::chunk::Chunk;
use crate::error::Result;
use crate::index::{Fields, Index};
pub(crate) use next::{first_passage_of, passages_of};
pub(crate) use query::asks_why;
use query::CorpusStats;
pub use query::{
    classify, is_topic_message, plan_query, refers_back, MessageKind, QueryPlan, WeightedTerm,
};

/// One earlier turn of the conversation, oldest first in a history slice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTurn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
}

impl HistoryTurn {
    /// A user turn.
    pub fn user(content: impl Into<String>) -> Self {
        HistoryTurn {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant turn.
    pub fn assistant(content: impl Into<String>) -> Self {
        HistoryTurn {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// A retrieved chunk and its score.
///
/// A hit is a chunk with a score, so the chunk's fields read straight through it (`hit.path`,
/// `hit.text`); changes go to `hit.chunk`. Its JSON is flat, the chunk's fields then `score`:
/// `{"path":..,"title":..,"heading":..,"line_start":..,"line_end":..,"text":..,"score":..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The retrieved text and where it sits (overlapping chunks of one document are merged
    /// into one hit).
    #[serde(flatten)]
    pub chunk: Chunk,
    /// BM25 score; only comparable within one retrieval.
    pub score: f32,
}

impl Hit {
    /// A hit on `chunk` with this score.
    pub fn new(chunk: Chunk, score: f32) -> Self {
        Hit { chunk, score }
    }
}

impl Deref for Hit {
    type Target = Chunk;

    fn deref(&self) -> &Chunk {
        &self.chunk
    }
}

/// The result of a search: the hits, best first, and the query that produced them.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieval {
    /// The final weighted query, `term^weight` per term, for debugging and eval reports.
    pub query: String,
    /// What the message was taken to be.
    pub kind: MessageKind,
    /// Best hits first, at most `k`.
    pub hits: Vec<Hit>,
}

/// [`plan_query`] with the statistics of `index`, as [`Retriever::search`] plans.
pub(crate) fn plan_for(
    message: &str,
    history: &[HistoryTurn],
    config: &RetrieverConfig,
    index: Option<&Index>,
) -> QueryPlan {
    let Some(index) = index else {
        return plan_query(message, history, config);
    };
    let searcher = index.searcher();
    let fields = index.fields();
    let doc_freq = |term: &str| index.doc_freq_in(&searcher, term);
    let in_titles = |term: &str| {
        let term = tantivy::Term::from_field_text(fields.title, term);
        searcher.doc_freq(&term).is_ok_and(|n| n > 0)
    };
    let stats = CorpusStats {
        chunks: searcher.num_docs(),
        doc_freq: &doc_freq,
        in_titles: &in_titles,
    };
    query::plan_with_stats(message, history, config, Some(&stats))
}

/// The most hits one search returns.
pub const MAX_HITS: usize = 100;

/// Tuning of retrieval. The defaults are what the bundled eval set was tuned on.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrieverConfig {
    /// Multiplier for matches in the document title.
    pub title_boost: f32,
    /// Multiplier for matches in the section headings (their words that are not title words).
    pub heading_boost: f32,
    /// Extra clause for two consecutive terms of the message appearing as a phrase in the text.
    pub phrase_boost: f32,
    /// Weight of terms borrowed from the most recent user turn (the message's own terms weigh 1).
    pub borrowed_weight: f32,
    /// Factor applied to borrowed weights for each turn further back.
    pub borrowed_decay: f32,
    /// How many earlier user turns a follow-up may borrow from.
    pub history_turns: usize,
    /// How many terms (the rarest in the corpus) each earlier turn may lend.
    pub borrowed_terms_per_turn: usize,
    /// A message whose terms are all in more than this share of chunks ("example", "use") is
    /// too generic to stand alone and is treated as a follow-up.
    pub generic_term_fraction: f32,
    /// Borrow for every message, not only for follow-ups, at this weight factor (0 disables).
    pub standalone_borrow_factor: f32,
}

impl Default for RetrieverConfig {
    fn default() -> Self {
        RetrieverConfig {
            title_boost: 1.5,
            heading_boost: 0.5,
            phrase_boost: 0.5,
            borrowed_weight: 0.6,
            borrowed_decay: 0.5,
            history_turns: 3,
            borrowed_terms_per_turn: 3,
            generic_term_fraction: 0.1,
            standalone_borrow_factor: 0.3,
        }
    }
}

impl Index {
    /// A retriever over this index, with the default tuning.
    ///
    /// Defined here rather than in `index` so that retrieval depends on the index and not
    /// the other way round.
    pub fn retriever(&self) -> Retriever {
        Retriever::new(self.clone())
    }
}

/// Searches an [`Index`] with history-aware queries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Retriever {
    index: Index,
    config: RetrieverConfig,
}

impl Retriever {
    /// A retriever with the default tuning.
    pub fn new(index: Index) -> Self {
        Self::with_config(index, RetrieverConfig::default())
    }

    /// A retriever with explicit tuning.
    pub fn with_config(index: Index, config: RetrieverConfig) -> Self {
        Retriever { index, config }
    }

    /// The tuning in use.
    pub fn config(&self) -> &RetrieverConfig {
        &self.config
    }

    /// Finds the `k` chunks most relevant to `message` in the context of `history`.
    ///
    /// Overlapping chunks of the same document are merged into one hit (scored by the best of
    /// them), so the `k` hits are `k` distinct passages; `k` is capped at [`MAX_HITS`]. A message
    /// without any topic term and without history to borrow from returns no hits.
    ///
    /// # Errors
    /// [`crate::RagError::Index`] when the index cannot be read.
    pub fn search(&self, message: &str, history: &[HistoryTurn], k: usize) -> Result<Retrieval> {
        let searcher = self.index.searcher();
        let fields = self.index.fields();
        let doc_freq = |term: &str| {
            let term = tantivy::Term::from_field_text(fields.text, term);
            // An unreadable statistic only costs ranking quality: treat the term as absent.
            searcher.doc_freq(&term).unwrap_or(0)
        };
        let in_titles = |term: &str| {
            let term = tantivy::Term::from_field_text(fields.title, term);
            searcher.doc_freq(&term).is_ok_and(|n| n > 0)
        };
        let stats = CorpusStats {
            chunks: searcher.num_docs(),
            doc_freq: &doc_freq,
            in_titles: &in_titles,
        };
        let plan = query::plan_with_stats(message, history, &self.config, Some(&stats));
        // "Tell me more" and "Continue" go on where the last answer stopped: the next passage
        // of the source it quoted leads (a "why?" asks for a reason instead, found by search).
        let continuation = match plan.kind {
            MessageKind::More | MessageKind::Continue if !query::asks_why(message) => {
                next::next_passage(&self.index, history)?
            }
            _ => None,
        };
        let query_text = plan.to_string();
        if plan.terms.is_empty() || k == 0 {
            return Ok(Retrieval {
                query: query_text,
                kind: plan.kind,
                hits: continuation.into_iter().take(k).collect(),
            });
        }
        let query = query::build(&plan, &fields, &self.config);
        let k = k.min(MAX_HITS);
        // Extra candidates, because merging overlapping chunks can fold several into one hit.
        let candidates = searcher.search(&query, &TopDocs::with_limit(k * 3 + 5))?;
        let mut hits = Vec::with_capacity(candidates.len());
        for (score, address) in candidates {
            hits.push(load_hit(&searcher, &fields, address, score)?);
        }
        let mut hits = merge_overlapping(hits);
        if let Some(mut next) = continuation {
            next.score = hits.first().map_or(1.0, |h| h.score);
            hits.retain(|h| {
                h.path != next.path || h.line_end < next.line_start || next.line_end < h.line_start
            });
            hits.insert(0, next);
        }
        hits.truncate(k);
        Ok(Retrieval {
            query: query_text,
            kind: plan.kind,
            hits,
        })
    }
}

pub(crate) fn load_hit(
    searcher: &tantivy::Searcher,
    fields: &Fields,
    address: DocAddress,
    score: f32,
) -> Result<Hit> {
    let doc: TantivyDocument = searcher.doc(address)?;
    let text = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let line = |field| {
        doc.get_first(field)
            .and_then(|v| v.as_u64())
            .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let chunk = Chunk {
        path: text(fields.path),
        title: text(fields.title),
        heading: text(fields.heading),
        line_start: line(fields.line_start),
        line_end: line(fields.line_end),
        text: text(fields.text),
    };
    Ok(Hit::new(chunk, score))
}

/// Merges hits of the same document whose line ranges overlap, keeping the order of the best.
pub(crate) fn merge_overlapping(hits: Vec<Hit>) -> Vec<Hit> {
    let mut merged: Vec<Hit> = Vec::with_capacity(hits.len());
    let mut by_path: HashMap<String, Vec<usize>> = HashMap::new();
    for hit in hits {
        let slots = by_path.entry(hit.path.clone()).or_default();
        let overlapping = slots.iter().copied().find(|&i| {
            let kept = &merged[i];
            hit.line_start <= kept.line_end && kept.line_start <= hit.line_end
        });
        match overlapping {
            Some(i) => absorb(&mut merged[i], hit),
            None => {
                slots.push(merged.len());
                merged.push(hit);
            }
        }
    }
    merged
}

/// Folds `other` into `kept`: union of line ranges, texts joined without repeating the overlap.
fn absorb(kept: &mut Hit, other: Hit) {
    kept.score = kept.score.max(other.score);
    let (kept, other) = (&mut kept.chunk, other.chunk);
    if kept.text.contains(&other.text) {
        // The same chunk, or one wholly inside the kept one.
    } else if other.text.contains(&kept.text) {
        kept.text = other.text;
    } else {
        let forward = overlap_len(&kept.text, &other.text);
        let backward = overlap_len(&other.text, &kept.text);
        let other_first = other.line_start < kept.line_start
            || (other.line_start == kept.line_start && backward > forward);
        kept.text = if other_first {
            join_overlapping(&other.text, &kept.text, backward)
        } else {
            join_overlapping(&kept.text, &other.text, forward)
        };
    }
    kept.line_start = kept.line_start.min(other.line_start);
    kept.line_end = kept.line_end.max(other.line_end);
}

/// Shorter suffix/prefix matches are coincidence (a shared word), not chunk overlap.
const MIN_TEXT_OVERLAP: usize = 12;

/// Length of the longest suffix of `first` that is a prefix of `second` (0 if under
/// [`MIN_TEXT_OVERLAP`]).
fn overlap_len(first: &str, second: &str) -> usize {
    let Some(lead) = second.chars().next() else {
        return 0;
    };
    first
        .match_indices(lead)
        .map(|(at, _)| first.len() - at)
        .take_while(|&len| len >= MIN_TEXT_OVERLAP)
        .find(|&len| second.starts_with(&first[first.len() - len..]))
        .unwrap_or(0)
}

fn join_overlapping(first: &str, second: &str, overlap: usize) -> String {
    if overlap > 0 {
        format!("{first}{}", &second[overlap..])
    } else {
        format!("{first}\n\n{second}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, lines: (u32, u32), text: &str, score: f32) -> Hit {
        let chunk = Chunk {
            path: path.into(),
            title: "T".into(),
            heading: "T".into(),
            line_start: lines.0,
            line_end: lines.1,
            text: text.into(),
        };
        Hit::new(chunk, score)
    }

    #[test]
    fn a_hit_is_one_flat_json_object() {
        let json = serde_json::to_string(&hit("a.md", (2, 4), "Text.", 1.5)).unwrap();
        assert_eq!(
            json,
            r#"{"path":"a.md","title":"T","heading":"T","line_start":2,"line_end":4,"text":"Text.","score":1.5}"#
        );
        assert_eq!(
            serde_json::from_str::<Hit>(&json).unwrap(),
            hit("a.md", (2, 4), "Text.", 1.5)
        );
    }

    #[test]
    fn overlapping_chunks_of_one_document_merge() {
        let hits = vec![
            hit("a.md", (5, 5), "Sentence two. Three. Four.", 3.0),
            hit("b.md", (5, 5), "Elsewhere.", 2.5),
            hit("a.md", (5, 5), "One. Sentence two.", 2.0),
            hit("a.md", (9, 9), "Later.", 1.0),
            hit("a.md", (5, 5), "Sentence two. Three. Four.", 0.5),
        ];
        let merged = merge_overlapping(hits);
        let summary: Vec<(&str, &str, f32)> = merged
            .iter()
            .map(|h| (h.path.as_str(), h.text.as_str(), h.score))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a.md", "One. Sentence two. Three. Four.", 3.0),
                ("b.md", "Elsewhere.", 2.5),
                ("a.md", "Later.", 1.0),
            ]
        );
    }

    #[test]
    fn ranges_merge_across_lines() {
        let mut kept = hit("a.md", (10, 20), "The middle part. The end part.", 2.0);
        absorb(
            &mut kept,
            hit("a.md", (4, 12), "The start part. The middle part.", 1.0),
        );
        assert_eq!(kept.text, "The start part. The middle part. The end part.");
        assert_eq!((kept.line_start, kept.line_end), (4, 20));
    }

    #[test]
    fn overlap_len_finds_the_longest_suffix_prefix() {
        assert_eq!(
            overlap_len("one two three four five", "three four five six"),
            15
        );
        assert_eq!(
            overlap_len("abc def", "def ghi"),
            0,
            "too short to be chunk overlap"
        );
        assert_eq!(overlap_len("abc", "xyz"), 0);
        assert_eq!(
            overlap_len("x ééééé ééééé", "ééééé ééééé y"),
            "ééééé ééééé".len()
        );
    }
}
