//! Hits prepared once per answer: split into sentences, each cleaned, judged and analyzed,
//! so that coverage checks and sentence scoring never stem the same text twice (stemming is
//! most of an answer's cost).

use std::collections::HashSet;

use super::sentence::{
    about_the_document, clean_sentence, is_quotable, leans_on_previous, without_quoted_phrases,
};
use crate::retrieve::Hit;
use crate::text::{analyze, fingerprint, is_list_item, sentence_spans};

/// A sentence of a hit, prepared once.
pub(super) struct Sentence {
    /// Cleaned for display.
    pub text: String,
    /// Analyzed terms, quoted example phrases left out.
    pub terms: HashSet<String>,
    /// Starts a paragraph (a blank line before it).
    pub opens_paragraph: bool,
    pub quotable: bool,
    /// Said in an earlier answer.
    pub said: bool,
    /// Needs the sentence before it ("It ...").
    pub leans: bool,
    /// A bullet or numbered list item.
    pub list_item: bool,
}

/// A hit with its sentences and terms.
pub(super) struct Passage<'h> {
    pub hit: &'h Hit,
    /// Terms of the title and headings.
    pub context: HashSet<String>,
    /// Terms of the whole passage: context and sentences.
    pub terms: HashSet<String>,
    pub sentences: Vec<Sentence>,
}

/// Prepares `hits`; `said` holds the fingerprints of sentences said in earlier answers.
pub(super) fn prepare<'h>(hits: &'h [Hit], said: &HashSet<String>) -> Vec<Passage<'h>> {
    hits.iter().map(|hit| prepare_one(hit, said)).collect()
}

fn prepare_one<'h>(hit: &'h Hit, said: &HashSet<String>) -> Passage<'h> {
    let context: HashSet<String> = analyze(&format!("{}\n{}", hit.title, hit.heading))
        .into_iter()
        .collect();
    let mut terms = context.clone();
    let mut end_of_previous = 0;
    let sentences = sentence_spans(&hit.text)
        .into_iter()
        .map(|span| {
            let gap = hit
                .text
                .get(end_of_previous..span.start)
                .unwrap_or_default();
            let opens_paragraph = end_of_previous == 0 || gap.matches('\n').count() >= 2;
            end_of_previous = span.end;
            let raw = &hit.text[span];
            let text = clean_sentence(raw);
            let sentence_terms: HashSet<String> = analyze(&without_quoted_phrases(&text))
                .into_iter()
                .collect();
            terms.extend(sentence_terms.iter().cloned());
            Sentence {
                opens_paragraph,
                quotable: is_quotable(&text) && !about_the_document(&text),
                said: said.contains(&fingerprint(&text)),
                leans: leans_on_previous(&text),
                list_item: is_list_item(raw),
                terms: sentence_terms,
                text,
            }
        })
        .collect();
    Passage {
        hit,
        context,
        terms,
        sentences,
    }
}
