//! Query planning: message classification, term borrowing from history, and the tantivy query.

use std::fmt;

use serde::{Deserialize, Serialize};
use tantivy::query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use ragchat_core::Role;

use super::{HistoryTurn, RetrieverConfig};
use crate::acts::conversation_act;
use crate::families::related_terms;
use crate::replies::NOTHING_FOUND_REPLY;

/// Weight of a family word ("prevent" for the asked "avoid") against the asked word.
const RELATIVE_WEIGHT: f32 = 0.4;
use crate::index::Fields;
use crate::text::{query_terms, words};

/// What a message is, as far as retrieval is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A self-contained question ("What is overfitting?").
    Standalone,
    /// A question that leans on earlier turns: pronouns ("How does it learn?"), "what about ...",
    /// a leading "and", or a very short message.
    FollowUp,
    /// A request for more without a topic of its own ("Tell me more", "Why?").
    More,
    /// A request to resume the conversation ("Continue", "Where were we?").
    Continue,
}

impl MessageKind {
    /// Whether the message needs earlier turns to make sense.
    pub fn leans_on_history(self) -> bool {
        self != MessageKind::Standalone
    }
}

/// A query term (analyzed: lowercased and stemmed) and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTerm {
    /// The analyzed term, as stored in the index.
    pub term: String,
    /// 1.0 for the message's own terms; less for terms borrowed from history.
    pub weight: f32,
    /// Whether the term came from an earlier turn.
    pub borrowed: bool,
}

/// The weighted terms a message turns into.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    /// How the message was classified.
    pub kind: MessageKind,
    /// The message's own terms first, then borrowed ones.
    pub terms: Vec<WeightedTerm>,
    /// Consecutive pairs of the message's own terms, matched as phrases for a bonus.
    pub phrases: Vec<(String, String)>,
}

impl fmt::Display for QueryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for term in &self.terms {
            if term.weight == 1.0 {
                parts.push(term.term.clone());
            } else {
                parts.push(format!("{}^{:.2}", term.term, term.weight));
            }
        }
        for (first, second) in &self.phrases {
            parts.push(format!("\"{first} {second}\""));
        }
        f.write_str(&parts.join(" "))
    }
}

const PRONOUNS: &[&str] = &[
    "it", "its", "it's", "this", "that", "these", "those", "they", "them", "their", "theirs", "he",
    "she", "him", "her", "one", "ones",
];
const LEADING_WORDS: &[&str] = &["and", "also", "but", "so", "then", "or"];
const LEADING_PHRASES: &[&str] = &["what about", "how about", "what else", "how so", "same for"];
const CONTINUE_PHRASES: &[&str] = &[
    "continue",
    "resume",
    "where were we",
    "left off",
    "go on",
    "keep going",
    "carry on",
    "were we talking",
    "we were discussing",
];

/// Classifies a message by its phrasing; see [`MessageKind`].
pub fn classify(message: &str) -> MessageKind {
    let words: Vec<String> = words(message).collect();
    let phrase = words.join(" ");
    let own_terms = query_terms(message).len();
    if own_terms == 0 {
        let resumes = CONTINUE_PHRASES.iter().any(|p| contains_phrase(&phrase, p));
        return if resumes {
            MessageKind::Continue
        } else {
            MessageKind::More
        };
    }
    let referential = refers_back(message)
        || words
            .first()
            .is_some_and(|w| LEADING_WORDS.contains(&w.as_str()))
        || LEADING_PHRASES.iter().any(|p| phrase.starts_with(p))
        || (own_terms <= 1 && words.len() <= 2);
    if referential {
        MessageKind::FollowUp
    } else {
        MessageKind::Standalone
    }
}

/// Whether the message opens with "why": "Why?" asks for a reason about the topic, not for more.
pub(crate) fn asks_why(message: &str) -> bool {
    words(message).next().is_some_and(|w| w == "why")
}

/// Whether the message points back at something said before with a pronoun ("it", "they").
pub fn refers_back(message: &str) -> bool {
    words(message).any(|w| PRONOUNS.contains(&w.as_str()))
}

/// Whether `phrase` contains `needle` on word boundaries.
fn contains_phrase(phrase: &str, needle: &str) -> bool {
    phrase == needle
        || phrase.starts_with(&format!("{needle} "))
        || phrase.ends_with(&format!(" {needle}"))
        || phrase.contains(&format!(" {needle} "))
}

/// Turns a message and its history into weighted query terms, without corpus statistics.
///
/// The message's own topic terms weigh 1. A message that leans on history (see
/// [`MessageKind::leans_on_history`]) borrows the terms of earlier user turns, most recent first,
/// at `borrowed_weight`, decaying by `borrowed_decay` per contributing turn, for at most
/// `history_turns` turns and stopping after the first self-contained question (the turn that set
/// the topic). A standalone message borrows the same way scaled by `standalone_borrow_factor`.
/// [`crate::Retriever::search`] refines this with the index's term statistics.
pub fn plan_query(message: &str, history: &[HistoryTurn], config: &RetrieverConfig) -> QueryPlan {
    plan_with_stats(message, history, config, None)
}

/// How common terms are in the index, for telling topic terms from generic ones.
pub(crate) struct CorpusStats<'a> {
    /// Chunks in the index.
    pub chunks: u64,
    /// Chunks containing an analyzed term.
    pub doc_freq: &'a dyn Fn(&str) -> u64,
    /// Whether some document's title contains an analyzed term: such a term names a topic
    /// ("grep", "egg") however often its document repeats it.
    pub in_titles: &'a dyn Fn(&str) -> bool,
}

/// However small the corpus, a term in this many chunks or fewer is never generic.
const MIN_GENERIC_CHUNKS: f32 = 3.0;

impl CorpusStats<'_> {
    fn is_generic(&self, term: &str, config: &RetrieverConfig) -> bool {
        let limit = (config.generic_term_fraction * self.chunks as f32).max(MIN_GENERIC_CHUNKS);
        (self.doc_freq)(term) as f32 > limit
    }
}

/// [`plan_query`] refined with corpus statistics:
///
/// - a "standalone" message whose own terms are all generic (in more than
///   `generic_term_fraction` of the chunks, like "example") leans on history after all;
/// - borrowed terms are the `borrowed_terms_per_turn` rarest of each turn, so a long earlier
///   question contributes its topic ("overfitting"), not its every word; generic terms, terms
///   absent from the corpus and bare numbers are not borrowed.
pub(crate) fn plan_with_stats(
    message: &str,
    history: &[HistoryTurn],
    config: &RetrieverConfig,
    stats: Option<&CorpusStats<'_>>,
) -> QueryPlan {
    let mut kind = classify(message);
    if conversation_act(message).is_some() {
        // "Thanks", "Good morning": nothing to look up, and no topic to borrow.
        return QueryPlan {
            kind,
            terms: Vec::new(),
            phrases: Vec::new(),
        };
    }
    let own = query_terms(message);
    if let Some(stats) = stats {
        let all_generic = own.iter().all(|term| stats.is_generic(term, config));
        if kind == MessageKind::Standalone && !own.is_empty() && all_generic {
            kind = MessageKind::FollowUp;
        }
    }
    let phrases = own
        .windows(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect();
    let mut terms: Vec<WeightedTerm> = own
        .into_iter()
        .map(|term| WeightedTerm {
            term,
            weight: 1.0,
            borrowed: false,
        })
        .collect();

    let factor = if kind.leans_on_history() {
        1.0
    } else {
        config.standalone_borrow_factor
    };
    let mut weight = config.borrowed_weight * factor;
    if weight > 0.0 {
        // Small talk is not a topic: "Thanks!" between two questions lends nothing. Nor is a
        // question the documents did not cover: "Continue" after it resumes the topic before.
        let user_turns = history
            .iter()
            .enumerate()
            .rev()
            .filter(|(at, t)| {
                t.role == Role::User
                    && conversation_act(&t.content).is_none()
                    && !history
                        .get(at + 1)
                        .is_some_and(|reply| reply.content.starts_with(NOTHING_FOUND_REPLY))
            })
            .map(|(_, t)| t);
        for turn in user_turns.take(config.history_turns) {
            let mut candidates: Vec<String> = query_terms(&turn.content)
                .into_iter()
                .filter(|term| !term.chars().all(|c| c.is_ascii_digit()))
                .filter(|term| !terms.iter().any(|t| t.term == *term))
                .collect();
            if let Some(stats) = stats {
                // Absent terms match nothing; generic ones ("learn" in a corpus about machine
                // learning) pull towards whatever mentions them most, not towards the topic.
                // "Continue" must find the topic even when every word of it is common. A pronoun
                // keeps common words too, at half weight: in "And a hard one?" after
                // soft-boiled eggs, "one" is an egg however many notes mention eggs, yet
                // "machine" after "What is machine learning?" must not outweigh the new "learn"
                // of "How does it learn?".
                // A standalone question borrows little, but in a conversation about grep that
                // little should be "grep", a title word, however often its page says it.
                let keep_generic = matches!(kind, MessageKind::Continue | MessageKind::More);
                let pronoun = refers_back(message);
                let standalone = kind == MessageKind::Standalone;
                candidates.retain(|term| {
                    (stats.doc_freq)(term) > 0
                        && (keep_generic
                            || pronoun
                            || !stats.is_generic(term, config)
                            || (standalone && (stats.in_titles)(term)))
                });
                // Title words first ("grep" in "How do I make grep ignore case?", which its
                // manual page repeats everywhere), then the rarest.
                candidates.sort_by_key(|term| (!(stats.in_titles)(term), (stats.doc_freq)(term)));
                candidates.truncate(config.borrowed_terms_per_turn);
            }
            let contributed = !candidates.is_empty();
            let generic_factor = |term: &str| match stats {
                Some(stats) if refers_back(message) && stats.is_generic(term, config) => 0.5,
                _ => 1.0,
            };
            terms.extend(candidates.into_iter().map(|term| WeightedTerm {
                weight: weight * generic_factor(&term),
                term,
                borrowed: true,
            }));
            if classify(&turn.content) == MessageKind::Standalone {
                break;
            }
            if contributed {
                weight *= config.borrowed_decay;
            }
        }
    }
    QueryPlan {
        kind,
        terms,
        phrases,
    }
}

/// The tantivy query of a plan: every term in title, heading and text (boosted per field and by
/// the term's weight), plus phrase clauses, all optional (BM25 sums what matches).
pub(crate) fn build(plan: &QueryPlan, fields: &Fields, config: &RetrieverConfig) -> Box<dyn Query> {
    let field_boosts = [
        (fields.title, config.title_boost),
        (fields.section, config.heading_boost),
        (fields.text, 1.0),
    ];
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    // The message's own "avoid" also looks for "prevent" and "reduce", at a fraction of its
    // weight (see `crate::families`).
    let relatives = plan
        .terms
        .iter()
        .filter(|t| !t.borrowed)
        .flat_map(|t| {
            related_terms(&t.term)
                .iter()
                .filter(move |r| **r != t.term)
                .map(move |r| (r.as_str(), t.weight * RELATIVE_WEIGHT))
        })
        .filter(|(r, _)| !plan.terms.iter().any(|t| t.term == *r));
    let weighted = plan
        .terms
        .iter()
        .map(|t| (t.term.as_str(), t.weight))
        .chain(relatives);
    for (term, weight) in weighted {
        for (field, boost) in field_boosts {
            if boost <= 0.0 {
                continue;
            }
            let query = TermQuery::new(
                Term::from_field_text(field, term),
                IndexRecordOption::WithFreqs,
            );
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(query), weight * boost)),
            ));
        }
    }
    if config.phrase_boost > 0.0 {
        for (first, second) in &plan.phrases {
            let phrase = PhraseQuery::new(vec![
                Term::from_field_text(fields.text, first),
                Term::from_field_text(fields.text, second),
            ]);
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(phrase), config.phrase_boost)),
            ));
        }
    }
    Box::new(BooleanQuery::new(clauses))
}

/// Whether a user message asked something about the documents with a topic of its own: not a
/// conversation act, nor a bare "Why?", "Tell me more" or "Continue". The welcome-back summary
/// lists only these as "what you asked".
pub fn is_topic_message(message: &str) -> bool {
    conversation_act(message).is_none()
        && !matches!(classify(message), MessageKind::More | MessageKind::Continue)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_follow_ups() {
        assert_eq!(
            classify("What is machine learning?"),
            MessageKind::Standalone
        );
        assert_eq!(classify("How does it learn?"), MessageKind::FollowUp);
        assert_eq!(
            classify("What about neural networks?"),
            MessageKind::FollowUp
        );
        assert_eq!(classify("And regression?"), MessageKind::FollowUp);
        assert_eq!(classify("Tell me more"), MessageKind::More);
        assert_eq!(classify("Why?"), MessageKind::More);
        assert_eq!(classify("Continue"), MessageKind::Continue);
        assert_eq!(classify("Where were we?"), MessageKind::Continue);
        assert_eq!(classify("Continue our conversation"), MessageKind::Continue);
        assert_eq!(
            classify("Continue with gradient descent please"),
            MessageKind::Standalone
        );
    }

    fn summary(plan: &QueryPlan) -> Vec<(&str, f32)> {
        plan.terms
            .iter()
            .map(|t| (t.term.as_str(), t.weight))
            .collect()
    }

    #[test]
    fn follow_ups_borrow_back_to_the_topic_setting_question() {
        let config = RetrieverConfig {
            borrowed_weight: 0.4,
            borrowed_decay: 0.5,
            ..RetrieverConfig::default()
        };
        let history = vec![
            HistoryTurn::user("What is overfitting?"),
            HistoryTurn::assistant("Overfitting is memorising noise [1]."),
            HistoryTurn::user("What is machine learning?"),
            HistoryTurn::assistant("Machine learning is learning from data [1]."),
            HistoryTurn::user("How does it learn?"),
            HistoryTurn::assistant("Through a loss function [1]."),
        ];
        let plan = plan_query("What about neural networks?", &history, &config);
        assert_eq!(plan.kind, MessageKind::FollowUp);
        assert_eq!(
            summary(&plan),
            vec![
                ("neural", 1.0),
                ("network", 1.0),
                ("learn", 0.4),
                ("machin", 0.2)
            ]
        );
        assert_eq!(plan.phrases, vec![("neural".into(), "network".into())]);
        assert_eq!(
            plan.to_string(),
            "neural network learn^0.40 machin^0.20 \"neural network\""
        );
    }

    #[test]
    fn standalone_questions_borrow_only_by_the_standalone_factor() {
        let history = vec![HistoryTurn::user("What is machine learning?")];
        let mut config = RetrieverConfig {
            borrowed_weight: 0.5,
            standalone_borrow_factor: 0.0,
            ..RetrieverConfig::default()
        };
        let plan = plan_query("What is overfitting?", &history, &config);
        assert_eq!(plan.kind, MessageKind::Standalone);
        assert_eq!(summary(&plan), vec![("overfit", 1.0)]);
        config.standalone_borrow_factor = 0.2;
        let plan = plan_query("What is overfitting?", &history, &config);
        assert_eq!(
            summary(&plan),
            vec![("overfit", 1.0), ("machin", 0.1), ("learn", 0.1)]
        );
    }

    #[test]
    fn statistics_pick_salient_borrowed_terms_and_spot_generic_questions() {
        let doc_freq = |term: &str| match term {
            "exampl" | "model" | "data" | "train" | "test" => 50,
            "overfit" => 5,
            "accuraci" => 8,
            _ => 0,
        };
        let stats = CorpusStats {
            chunks: 100,
            doc_freq: &doc_freq,
            in_titles: &|_| false,
        };
        let history = vec![HistoryTurn::user(
            "My model gets 99% accuracy on the training data but 70% on test data. Overfitting?",
        )];
        let config = RetrieverConfig {
            borrowed_terms_per_turn: 2,
            generic_term_fraction: 0.1,
            ..RetrieverConfig::default()
        };
        let plan = plan_with_stats("How do I fix it?", &history, &config, Some(&stats));
        let borrowed: Vec<&str> = plan
            .terms
            .iter()
            .filter(|t| t.borrowed)
            .map(|t| t.term.as_str())
            .collect();
        assert_eq!(borrowed, vec!["overfit", "accuraci"]);

        let generic = plan_with_stats("Can you give an example?", &history, &config, Some(&stats));
        assert_eq!(generic.kind, MessageKind::FollowUp);
        assert_eq!(
            classify("Can you give an example?"),
            MessageKind::Standalone
        );
    }

    #[test]
    fn continue_without_history_has_no_terms() {
        let plan = plan_query("Continue", &[], &RetrieverConfig::default());
        assert_eq!(plan.kind, MessageKind::Continue);
        assert!(plan.terms.is_empty());
    }
}
