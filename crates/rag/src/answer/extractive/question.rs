//! The question as the extractive answerer weighs it: its terms with their weights, what kind
//! of answer it wants, and how much of it a passage or a sentence covers.

use std::collections::HashSet;

use super::super::intent::Intent;
use super::passage::Passage;
use crate::families::related_terms;
use crate::retrieve::Hit;

/// Share of the question's own weight a title must name to be offered as a near topic.
const NEAR_TOPIC_SHARE: f32 = 0.3;

/// What a term found only through its family ("reduces" for "prevent") counts for.
const FAMILY_SHARE: f32 = 0.5;

/// One query term as the selection weighs it.
#[derive(Debug, Clone)]
pub(super) struct QueryTerm {
    /// The analyzed term.
    pub term: String,
    /// Plan weight (1 for the message's own terms) times the term's rarity in the corpus.
    pub weight: f32,
    /// Borrowed from earlier turns.
    pub borrowed: bool,
    /// In few enough chunks to carry a topic ("cream"), unlike "add" or "model".
    pub salient: bool,
}

/// The question as the selection sees it.
#[derive(Debug, Clone)]
pub(super) struct Question {
    pub terms: Vec<QueryTerm>,
    pub intent: Intent,
    /// The message has topic terms of its own that answers must be about.
    pub needs_own_match: bool,
    /// Every quoted sentence must be about the earlier topic (its terms in the sentence or in
    /// its passage's title or headings): the message points back ("How do I prevent it?") or
    /// has no topic of its own ("Why?").
    pub needs_topic_match: bool,
}

/// How much of a question a text covers.
#[derive(Debug, Clone, Default)]
pub(super) struct Coverage {
    /// Weight of the message's own terms the text says.
    pub own: f32,
    /// Weight of borrowed (topic) terms the text says.
    pub topic: f32,
    /// The terms matched, by name.
    pub terms: Vec<String>,
}

impl Question {
    /// The message's own terms.
    pub(super) fn own(&self) -> impl Iterator<Item = &QueryTerm> {
        self.terms.iter().filter(|t| !t.borrowed)
    }

    /// Total weight of all terms.
    pub(super) fn total_weight(&self) -> f32 {
        self.terms.iter().map(|t| t.weight).sum()
    }

    /// Total weight of the message's own terms.
    pub(super) fn own_weight(&self) -> f32 {
        self.own().map(|t| t.weight).sum()
    }

    /// What `terms` cover of the question: a term counts fully when present, for
    /// [`FAMILY_SHARE`] when only a word of its family is ("reduces" for "prevent").
    pub(super) fn coverage(&self, terms: &HashSet<String>) -> Coverage {
        let mut coverage = Coverage::default();
        for term in &self.terms {
            let strength = match_strength(terms, term);
            if strength == 0.0 {
                continue;
            }
            if term.borrowed {
                coverage.topic += strength * term.weight;
            } else {
                coverage.own += strength * term.weight;
            }
            coverage.terms.push(term.term.clone());
        }
        coverage
    }

    /// The term every quoted sentence must cover, itself or through its section's headings:
    /// the rarest of the message's own terms that the passages contain ("cream" in "Should I add
    /// cream?", "soft" in "How long do I boil a soft-boiled egg?"), or for a message without
    /// topic terms of its own ("Why?"), the weightiest borrowed one. `None` without terms.
    pub(super) fn required_term(&self, passages: &[Passage<'_>]) -> Option<&QueryTerm> {
        let present = |t: &QueryTerm| passages.iter().any(|p| match_strength(&p.terms, t) > 0.0);
        let candidates = || self.terms.iter().filter(|t| present(t));
        let own = candidates()
            .filter(|t| !t.borrowed)
            .max_by(|a, b| a.weight.total_cmp(&b.weight));
        // Without words of its own, the topic is what was talked about ("overfitting"), not
        // what was asked about it ("avoid").
        own.or_else(|| {
            if self.needs_own_match {
                None
            } else {
                candidates()
                    .filter(|t| related_terms(&t.term).is_empty())
                    .max_by(|a, b| a.weight.total_cmp(&b.weight))
            }
        })
    }

    /// The largest share of the message's own term weight that one hit covers (title,
    /// headings, text; quoted example phrases left out). Catches questions that share a word
    /// or two with the documents by chance ("Who won the 1998 World Cup?") or only with an
    /// example quoted in them ("The capital of France is"), whose subject they do not cover.
    ///
    /// For a question that points back ("How do I avoid it?"), the topic it points at counts
    /// too: "avoid" alone is not what the passage must be about.
    pub(super) fn own_coverage(&self, passages: &[Passage<'_>]) -> f32 {
        let with_topic = self.needs_topic_match;
        let total = if with_topic {
            self.total_weight()
        } else {
            self.own_weight()
        };
        if self.own_weight() <= 0.0 || total <= 0.0 {
            return 1.0;
        }
        passages
            .iter()
            .map(|passage| {
                let coverage = self.coverage(&passage.terms);
                let covered = coverage.own + if with_topic { coverage.topic } else { 0.0 };
                covered / total
            })
            .fold(0.0, f32::max)
    }

    /// The hit whose title or headings name salient terms carrying at least
    /// [`NEAR_TOPIC_SHARE`] of the message's own weight: what the documents cover near a
    /// question they do not answer ("hyperparameter tuning" for "How do I tune a guitar?",
    /// but not "gradient descent" for "Is a steep ski slope descent safe?").
    pub(super) fn near_topic<'h>(&self, passages: &[Passage<'h>]) -> Option<&'h Hit> {
        let own_total = self.own_weight();
        passages
            .iter()
            .find(|passage| {
                let named: f32 = self
                    .own()
                    .filter(|t| t.salient && passage.context.contains(&t.term))
                    .map(|t| t.weight)
                    .sum();
                named > 0.0 && named >= NEAR_TOPIC_SHARE * own_total
            })
            .map(|passage| passage.hit)
    }
}

/// 1 when `terms` contain `term`, [`FAMILY_SHARE`] when they contain a word of its family
/// (own terms only: borrowed ones name a topic, not an action), else 0.
pub(super) fn match_strength(terms: &HashSet<String>, term: &QueryTerm) -> f32 {
    if terms.contains(&term.term) {
        1.0
    } else if !term.borrowed && related_terms(&term.term).iter().any(|r| terms.contains(r)) {
        FAMILY_SHARE
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_words_count_for_half() {
        let term = |t: &str| QueryTerm {
            term: t.into(),
            weight: 2.0,
            borrowed: false,
            salient: true,
        };
        let question = Question {
            terms: vec![term("prevent"), term("overfit")],
            intent: Intent::HowTo,
            needs_own_match: true,
            needs_topic_match: false,
        };
        let said: HashSet<String> = ["reduc", "overfit"].iter().map(|s| s.to_string()).collect();
        let coverage = question.coverage(&said);
        assert_eq!(coverage.own, 3.0);
        assert_eq!(coverage.terms, vec!["prevent", "overfit"]);
    }
}
