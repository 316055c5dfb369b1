//! [`ExtractiveAnswerer`]: answers by quoting the best sentences of the hits, with citations.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;

use super::{Answer, AnswerRequest, Answerer, Source};
use crate::error::Result;
use crate::retrieve::{
    classify, plan_query, refers_back, HistoryTurn, Hit, MessageKind, RetrieverConfig, Role,
    WeightedTerm,
};
use crate::text::{analyze, fingerprint, sentence_fingerprints, sentence_spans};

/// The reply when the documents hold nothing relevant.
pub const NOTHING_FOUND_REPLY: &str = "I couldn't find anything about that in the documents.";

/// The reply to "Continue" (or "Tell me more") when there is no earlier conversation.
pub const NO_CONVERSATION_REPLY: &str = "I don't have any earlier conversation with you to \
     continue. Ask me a question about the documents and I'll answer from them.";

/// Tuning of the extractive answerer.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractiveConfig {
    /// A best hit scoring below this is treated as no hit (BM25 score).
    pub min_score: f32,
    /// At most this many sentences per answer.
    pub max_sentences: usize,
    /// Stop adding sentences once the answer is this long (bytes).
    pub max_chars: usize,
    /// Share of the message's own terms that must occur in the hits for an answer.
    pub min_term_coverage: f32,
    /// Retrieval tuning, used to weigh the question's terms the way the retriever did.
    pub retrieval: RetrieverConfig,
}

impl Default for ExtractiveConfig {
    fn default() -> Self {
        ExtractiveConfig {
            min_score: 1.0,
            max_sentences: 3,
            max_chars: 700,
            min_term_coverage: 0.5,
            retrieval: RetrieverConfig::default(),
        }
    }
}

/// Offline answerer: picks the most relevant sentences of the top hits and cites them.
///
/// Sentences are scored by the weighted overlap of their stemmed terms with the query's (the
/// message's own terms and, for follow-ups, terms borrowed from history), the score of their
/// chunk, and small bonuses for leading a chunk and for substance (content words). Sentences said
/// in earlier answers are skipped while others are available. The answer is 1 to
/// [`ExtractiveConfig::max_sentences`] sentences, each followed by `[n]`, sources in retrieval
/// order; it quotes and never paraphrases, so it cannot invent.
///
/// It answers [`NOTHING_FOUND_REPLY`] when the best hit is weak, when the hits miss most of the
/// question's own terms, or when no sentence contains one of them (a question pointing back with
/// "it" or "they" may be answered from the borrowed topic alone). "Continue" recaps the topic of
/// the conversation and adds sentences not said before; "Continue" or "Tell me more" with no
/// conversation gets [`NO_CONVERSATION_REPLY`].
#[derive(Debug, Clone, Default)]
pub struct ExtractiveAnswerer {
    config: ExtractiveConfig,
}

/// A candidate sentence of a hit.
struct Candidate {
    hit: usize,
    /// Position within the hit's text, to keep document order within a source.
    position: usize,
    text: String,
    score: f32,
    /// Speaks about the document ("This article explains ...") rather than the subject.
    about_the_document: bool,
}

impl ExtractiveAnswerer {
    /// An answerer with the default tuning.
    pub fn new() -> Self {
        Self::default()
    }

    /// An answerer with explicit tuning.
    pub fn with_config(config: ExtractiveConfig) -> Self {
        ExtractiveAnswerer { config }
    }

    /// Composes the answer at once; [`Answerer::answer`] streams the same text word by word.
    pub fn compose(&self, request: &AnswerRequest) -> Answer {
        let kind = classify(&request.question);
        let has_conversation = request.history.iter().any(|t| t.role == Role::User);
        if matches!(kind, MessageKind::Continue | MessageKind::More) && !has_conversation {
            return plain(NO_CONVERSATION_REPLY);
        }
        let mut preamble = String::new();
        if kind == MessageKind::Continue {
            let asked = last_topic_question(&request.history);
            match request.hits.first() {
                Some(hit) => {
                    let title = &hit.title;
                    preamble = format!(
                        "We were talking about {title} (you asked: \"{asked}\"). \
                         Picking up from there: "
                    );
                }
                None => {
                    return plain(&format!(
                        "We were talking about \"{asked}\", but I couldn't find anything more \
                         about it in the documents."
                    ))
                }
            }
        }
        // Say something new where there is something new; only "more" and "continue" insist.
        let said = said_before(&request.history);
        let mut chosen = self.choose(request, &said);
        let insists_on_new = matches!(kind, MessageKind::Continue | MessageKind::More);
        if chosen.is_empty() && !insists_on_new && !said.is_empty() {
            chosen = self.choose(request, &HashSet::new());
        }
        if chosen.is_empty() {
            if !preamble.is_empty() {
                preamble.push_str("that's everything I found on it in the documents.");
                return plain(&preamble);
            }
            return plain(NOTHING_FOUND_REPLY);
        }
        let mut answer = cite(&chosen, &request.hits);
        answer.text.insert_str(0, &preamble);
        answer
    }

    /// Picks the sentences of the answer, ordered by hit rank, then by position in the hit.
    fn choose(&self, request: &AnswerRequest, said: &HashSet<String>) -> Vec<Candidate> {
        let Some(best_hit) = request.hits.first() else {
            return Vec::new();
        };
        if best_hit.score < self.config.min_score {
            return Vec::new();
        }
        let plan = plan_query(&request.question, &request.history, &self.config.retrieval);
        let weights: HashMap<&str, (f32, bool)> = plan
            .terms
            .iter()
            .map(|t| (t.term.as_str(), (t.weight, t.borrowed)))
            .collect();
        let total_weight: f32 = plan.terms.iter().map(|t| t.weight).sum();
        if total_weight <= 0.0 {
            return Vec::new();
        }
        // The answer must be about the new message, not only the earlier topic: "What about
        // quantum computing?" must not be answered with more on the previous subject. A message
        // that points back ("How do I fix it?") may be answered from the borrowed topic alone.
        let needs_own_match =
            plan.terms.iter().any(|t| !t.borrowed) && !refers_back(&request.question);
        if needs_own_match && !self.covers_question(&plan.terms, &request.hits) {
            return Vec::new();
        }

        let mut candidates = Vec::new();
        for (index, hit) in request.hits.iter().enumerate() {
            let chunk_factor = (hit.score / best_hit.score).clamp(0.0, 1.0);
            for (position, span) in sentence_spans(&hit.text).into_iter().enumerate() {
                let text = clean_sentence(&hit.text[span]);
                if !is_quotable(&text) || said.contains(&fingerprint(&text)) {
                    continue;
                }
                let terms: HashSet<String> = analyze(&text).into_iter().collect();
                let mut overlap = 0.0;
                let mut matches_own_term = false;
                for term in &terms {
                    if let Some(&(weight, borrowed)) = weights.get(term.as_str()) {
                        overlap += weight;
                        matches_own_term |= !borrowed;
                    }
                }
                if overlap == 0.0 || (needs_own_match && !matches_own_term) {
                    continue;
                }
                // Leads often define the subject; longer sentences carry more than openers
                // such as "X has a small vocabulary."
                let lead_bonus = if position == 0 { 0.1 } else { 0.0 };
                let substance = 0.3 * (terms.len() as f32 / 10.0).min(1.0);
                candidates.push(Candidate {
                    hit: index,
                    position,
                    about_the_document: about_the_document(&text),
                    text,
                    score: overlap / total_weight + chunk_factor + lead_bonus + substance,
                });
            }
        }
        // "This article explains ..." matches many terms but tells the reader about the
        // document, not about the subject: quoted only when nothing else matches.
        if candidates.iter().any(|c| !c.about_the_document) {
            candidates.retain(|c| !c.about_the_document);
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        let Some(top) = candidates.first().map(|c| c.score) else {
            return Vec::new();
        };
        let mut chosen: Vec<Candidate> = Vec::new();
        let mut length = 0;
        for candidate in candidates {
            if chosen.len() >= self.config.max_sentences {
                break;
            }
            let fits = chosen.is_empty() || length + candidate.text.len() <= self.config.max_chars;
            if candidate.score >= top * 0.5 && fits {
                length += candidate.text.len() + 5;
                chosen.push(candidate);
            }
        }
        // Sources in retrieval order (the ranking weighs titles and sections, which a single
        // sentence cannot), sentences in document order within a source.
        chosen.sort_by_key(|c| (c.hit, c.position));
        chosen
    }

    /// Whether the hits mention at least [`ExtractiveConfig::min_term_coverage`] of the
    /// message's own terms. Catches questions that share a word or two with the documents by
    /// chance ("Who won the 1998 World Cup?") but whose subject is not in them.
    fn covers_question(&self, terms: &[WeightedTerm], hits: &[Hit]) -> bool {
        let own: Vec<&str> = terms
            .iter()
            .filter(|t| !t.borrowed)
            .map(|t| t.term.as_str())
            .collect();
        if own.is_empty() {
            return true;
        }
        let present: HashSet<String> = hits
            .iter()
            .flat_map(|h| analyze(&format!("{}\n{}\n{}", h.title, h.heading, h.text)))
            .collect();
        let covered = own.iter().filter(|t| present.contains(**t)).count();
        covered as f32 >= self.config.min_term_coverage * own.len() as f32
    }
}

#[async_trait]
impl Answerer for ExtractiveAnswerer {
    fn describe(&self) -> String {
        "extractive".to_owned()
    }

    async fn answer(
        &self,
        request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer> {
        let answer = self.compose(request);
        for word in answer.text.split_inclusive(' ') {
            sink(word);
        }
        Ok(answer)
    }
}

fn plain(text: &str) -> Answer {
    Answer {
        text: text.to_owned(),
        sources: Vec::new(),
    }
}

/// Writes the chosen sentences with `[n]` markers; sources numbered by first citation.
fn cite(chosen: &[Candidate], hits: &[Hit]) -> Answer {
    let mut numbers: HashMap<usize, usize> = HashMap::new();
    let mut sources = Vec::new();
    let mut parts = Vec::with_capacity(chosen.len());
    for candidate in chosen {
        let number = *numbers.entry(candidate.hit).or_insert_with(|| {
            sources.push(Source::from(&hits[candidate.hit]));
            sources.len()
        });
        parts.push(format!("{} [{number}]", candidate.text));
    }
    Answer {
        text: parts.join(" "),
        sources,
    }
}

/// The most recent user question that had a topic of its own, for the "Continue" recap.
fn last_topic_question(history: &[HistoryTurn]) -> String {
    let users = || history.iter().rev().filter(|t| t.role == Role::User);
    let turn = users()
        .find(|t| {
            !matches!(
                classify(&t.content),
                MessageKind::Continue | MessageKind::More
            )
        })
        .or_else(|| users().next());
    let question = turn.map_or("", |t| t.content.trim());
    truncate_chars(question, 120)
}

/// Sentences the assistant already said, fingerprinted, so a follow-up adds something new.
fn said_before(history: &[HistoryTurn]) -> HashSet<String> {
    history
        .iter()
        .filter(|t| t.role == Role::Assistant)
        .flat_map(|t| sentence_fingerprints(&t.content))
        .collect()
}

/// Whether a sentence can stand alone in an answer: a real sentence, not a heading, a fragment
/// introducing a list, or code.
fn is_quotable(sentence: &str) -> bool {
    sentence.split_whitespace().count() >= 4
        && !sentence.ends_with(':')
        && !sentence.starts_with(['#', '|', '`', '>'])
}

/// Whether a sentence speaks about the document it stands in ("This article explains ...",
/// "In this guide we ...") rather than about the subject.
fn about_the_document(sentence: &str) -> bool {
    const OPENERS: [&str; 4] = ["this ", "in this ", "the following ", "below, "];
    const DOCUMENTS: [&str; 9] = [
        "article", "guide", "page", "document", "section", "chapter", "post", "tutorial", "note",
    ];
    let lower = sentence.to_lowercase();
    OPENERS.iter().any(|opener| {
        lower.strip_prefix(opener).is_some_and(|rest| {
            DOCUMENTS.iter().any(|d| {
                rest.strip_prefix(d)
                    .is_some_and(|after| after.starts_with([' ', ',', 's']))
            })
        })
    })
}

/// Strips markdown markup and list markers and collapses whitespace, for display.
fn clean_sentence(raw: &str) -> String {
    let mut text = raw.trim();
    for marker in ["- ", "* ", "+ "] {
        text = text.strip_prefix(marker).unwrap_or(text);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with(". ") {
        text = &text[digits + 2..];
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Links: keep the label, drop the target.
    while let Some(open) = rest.find('[') {
        let label_end = rest[open..].find("](").map(|i| open + i);
        let target_end = label_end.and_then(|l| rest[l..].find(')').map(|i| l + i));
        match (label_end, target_end) {
            (Some(label_end), Some(target_end)) => {
                out.push_str(&rest[..open]);
                out.push_str(&rest[open + 1..label_end]);
                rest = &rest[target_end + 1..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    let out = out.replace("**", "").replace("__", "").replace('`', "");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(path: &str, title: &str, text: &str, score: f32) -> Hit {
        Hit {
            path: path.into(),
            title: title.into(),
            heading: title.into(),
            line_start: 1,
            line_end: 3,
            text: text.into(),
            score,
        }
    }

    fn request(question: &str, history: Vec<HistoryTurn>, hits: Vec<Hit>) -> AnswerRequest {
        AnswerRequest {
            question: question.into(),
            history,
            hits,
        }
    }

    fn gradient_hits() -> Vec<Hit> {
        vec![
            hit(
                "gd.md",
                "Gradient Descent",
                "Gradient descent adjusts each parameter against the gradient of the loss. \
                 It repeats this many times. Steps that are too large overshoot the minimum.",
                8.0,
            ),
            hit(
                "nn.md",
                "Neural Networks",
                "Neural networks are trained with gradient descent and backpropagation. \
                 They stack layers of simple units.",
                4.0,
            ),
        ]
    }

    #[test]
    fn quotes_relevant_sentences_with_matching_citations() {
        let answer = ExtractiveAnswerer::new().compose(&request(
            "What is gradient descent?",
            vec![],
            gradient_hits(),
        ));
        assert!(
            answer.text.starts_with(
                "Gradient descent adjusts each parameter against the gradient of the loss. [1]"
            ),
            "{}",
            answer.text
        );
        assert!(
            answer.text.contains("backpropagation. [2]"),
            "{}",
            answer.text
        );
        let paths: Vec<&str> = answer.sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, vec!["gd.md", "nn.md"]);
        assert!(!answer.text.contains("It repeats this many times"));
    }

    #[test]
    fn honest_when_nothing_relevant() {
        let answerer = ExtractiveAnswerer::new();
        let none = answerer.compose(&request("What is gradient descent?", vec![], vec![]));
        assert_eq!(none, plain(NOTHING_FOUND_REPLY));
        let unrelated = answerer.compose(&request(
            "Who painted the Mona Lisa?",
            vec![],
            gradient_hits(),
        ));
        assert_eq!(unrelated, plain(NOTHING_FOUND_REPLY));
        // "descent" matches, but "skiing", "slope" and "safety" are nowhere in the hits.
        let one_word = answerer.compose(&request(
            "Is a steep ski slope descent safe?",
            vec![],
            gradient_hits(),
        ));
        assert_eq!(one_word, plain(NOTHING_FOUND_REPLY));
        let mut weak = gradient_hits();
        weak.iter_mut().for_each(|h| h.score = 0.2);
        let weak = answerer.compose(&request("What is gradient descent?", vec![], weak));
        assert_eq!(weak, plain(NOTHING_FOUND_REPLY));
    }

    #[test]
    fn continue_without_history_says_so() {
        let answer =
            ExtractiveAnswerer::new().compose(&request("Continue", vec![], gradient_hits()));
        assert_eq!(answer.text, NO_CONVERSATION_REPLY);
        assert!(answer.sources.is_empty());
    }

    #[test]
    fn continue_recaps_and_adds_only_new_sentences() {
        let history = vec![
            HistoryTurn::user("What is gradient descent?"),
            HistoryTurn::assistant(
                "Gradient descent adjusts each parameter against the gradient of the loss. [1]",
            ),
        ];
        let answer =
            ExtractiveAnswerer::new().compose(&request("Continue", history, gradient_hits()));
        assert!(
            answer.text.starts_with(
                "We were talking about Gradient Descent (you asked: \"What is gradient descent?\")."
            ),
            "{}",
            answer.text
        );
        assert!(
            !answer.text.contains("adjusts each parameter"),
            "{}",
            answer.text
        );
        assert!(answer.text.contains("[1]"));
        assert!(!answer.sources.is_empty());
    }

    #[tokio::test]
    async fn streams_word_deltas_that_add_up_to_the_answer() {
        let answerer = ExtractiveAnswerer::new();
        let mut deltas = Vec::new();
        let answer = answerer
            .answer(
                &request("What is gradient descent?", vec![], gradient_hits()),
                &mut |delta: &str| deltas.push(delta.to_owned()),
            )
            .await
            .expect("extractive answers never fail");
        assert!(deltas.len() > 10);
        assert!(deltas.iter().all(|d| d.split_whitespace().count() == 1));
        assert_eq!(deltas.concat(), answer.text);
    }

    #[test]
    fn sentences_about_the_document_give_way_to_sentences_about_the_subject() {
        assert!(about_the_document(
            "This article explains how models learn from data."
        ));
        assert!(about_the_document("In this guide, we set up the index."));
        assert!(!about_the_document("This model learns from data."));
        assert!(!about_the_document("Articles about models abound."));

        let text = "This article explains gradient descent and the loss function in detail. \
                    Gradient descent lowers the loss function by stepping against its gradient.";
        let answer = ExtractiveAnswerer::new().compose(&request(
            "How does gradient descent lower the loss function?",
            vec![],
            vec![hit("gd.md", "Gradient descent", text, 5.0)],
        ));
        assert!(
            answer.text.contains("stepping against its gradient"),
            "{}",
            answer.text
        );
        assert!(!answer.text.contains("This article"), "{}", answer.text);
    }

    #[test]
    fn cleans_markdown_for_display() {
        assert_eq!(
            clean_sentence("- **Bold** [link text](http://x.y) and `code`\n  wrapped."),
            "Bold link text and code wrapped."
        );
    }
}
