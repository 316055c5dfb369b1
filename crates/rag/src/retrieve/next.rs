//! "Tell me more": the passage that follows the one the previous answer quoted.
//!
//! Answers quote their sources verbatim (the extractive answerer never rephrases), so the
//! passage an answer came from can be found again from its text alone: search for its words,
//! keep the chunks that contain one of its sentences, and take the chunk of the same document
//! that starts after them. Nothing extra has to be stored with the conversation. An answer
//! that quotes nothing (an LLM's own words) finds no passage, and "more" falls back to a
//! search on the topic.

use std::collections::HashSet;

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use ragchat_core::Role;

use super::{load_hit, HistoryTurn, Hit};
use crate::error::Result;
use crate::index::Index;
use crate::text::{analyze, sentence_fingerprints};

/// Chunks searched for the previous answer's sentences.
const CANDIDATES: usize = 10;
/// Distinct terms of the previous answer used to find it again.
const MAX_TERMS: usize = 40;

/// The passage after the one the last assistant answer quoted (see the module docs), if that
/// answer quoted one and its document has anything left to say.
///
/// # Errors
/// [`crate::RagError::Index`] when the index cannot be read.
pub(crate) fn next_passage(index: &Index, history: &[HistoryTurn]) -> Result<Option<Hit>> {
    let Some(answer) = history.iter().rev().find(|t| t.role == Role::Assistant) else {
        return Ok(None);
    };
    let said: HashSet<String> = sentence_fingerprints(&answer.content).collect();
    if said.is_empty() {
        return Ok(None);
    }
    let searcher = index.searcher();
    let fields = index.fields();
    let mut seen = HashSet::new();
    let clauses: Vec<(Occur, Box<dyn Query>)> = analyze(&answer.content)
        .into_iter()
        .filter(|t| seen.insert(t.clone()))
        .take(MAX_TERMS)
        .map(|t| {
            let query = TermQuery::new(
                Term::from_field_text(fields.text, &t),
                IndexRecordOption::WithFreqs,
            );
            (Occur::Should, Box::new(query) as Box<dyn Query>)
        })
        .collect();
    if clauses.is_empty() {
        return Ok(None);
    }
    let found = searcher.search(
        &BooleanQuery::new(clauses),
        &TopDocs::with_limit(CANDIDATES),
    )?;
    let mut chunks = Vec::with_capacity(found.len());
    for (_, address) in found {
        chunks.push(load_hit(&searcher, &fields, address, 0.0)?);
    }
    // The passage the answer's first quoted sentence came from (its [1]): "more" goes on
    // from there, past any of its passages the answer already quoted in full.
    let located = sentence_fingerprints(&answer.content).find_map(|sentence| {
        chunks
            .iter()
            .find(|c| sentence_fingerprints(&c.text).any(|f| f == sentence))
    });
    let Some((path, quoted_end)) = located.map(|c| (c.path.clone(), c.line_end)) else {
        return Ok(None);
    };
    // Everything said so far in the conversation: a passage is "next" only if it has
    // something not said yet. At the end of the document, the first such passage from its
    // start (the conversation may have begun in the middle).
    let said_ever: HashSet<String> = history
        .iter()
        .filter(|t| t.role == Role::Assistant)
        .flat_map(|t| sentence_fingerprints(&t.content))
        .collect();
    let mut passages: Vec<Hit> = passages_of(index, &path)?
        .into_iter()
        .filter(|p| sentence_fingerprints(&p.text).any(|f| !said_ever.contains(&f)))
        .collect();
    passages.sort_by_key(|p| p.line_start);
    let after = passages.iter().position(|p| p.line_end > quoted_end);
    Ok(match after {
        Some(at) => Some(passages.swap_remove(at)),
        None => passages.into_iter().next(),
    })
}

/// Every chunk of the document at `path`, in no particular order.
///
/// # Errors
/// [`crate::RagError::Index`] when the index cannot be read.
pub(crate) fn passages_of(index: &Index, path: &str) -> Result<Vec<Hit>> {
    let searcher = index.searcher();
    let fields = index.fields();
    let query = TermQuery::new(
        Term::from_field_text(fields.path, path),
        IndexRecordOption::Basic,
    );
    let mut passages = Vec::new();
    for address in searcher.search(&query, &DocSetCollector)? {
        passages.push(load_hit(&searcher, &fields, address, 0.0)?);
    }
    Ok(passages)
}

/// The first passage of the document at `path` (by line) that `accept`s: passages are put in
/// order from the index's line numbers, and only those looked at are loaded.
///
/// # Errors
/// [`crate::RagError::Index`] when the index cannot be read.
pub(crate) fn first_passage_of(
    index: &Index,
    path: &str,
    accept: &dyn Fn(&Hit) -> bool,
) -> Result<Option<Hit>> {
    let searcher = index.searcher();
    let fields = index.fields();
    let query = TermQuery::new(
        Term::from_field_text(fields.path, path),
        IndexRecordOption::Basic,
    );
    let mut ordered: Vec<(u64, tantivy::DocAddress)> = Vec::new();
    for address in searcher.search(&query, &DocSetCollector)? {
        let segment = searcher.segment_reader(address.segment_ord);
        let line = segment
            .fast_fields()
            .u64("line_start")?
            .first(address.doc_id)
            .unwrap_or(u64::MAX);
        ordered.push((line, address));
    }
    ordered.sort_unstable_by_key(|(line, address)| (*line, address.segment_ord, address.doc_id));
    for (_, address) in ordered {
        let passage = load_hit(&searcher, &fields, address, 0.0)?;
        if accept(&passage) {
            return Ok(Some(passage));
        }
    }
    Ok(None)
}
