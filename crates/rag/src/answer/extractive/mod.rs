//! [`ExtractiveAnswerer`]: answers by quoting the sentences of the hits that answer the
//! question, with citations; declines plainly when the documents do not cover it.
//!
//! - `question`  the question's weighted terms, coverage, the term an answer must cover
//! - `passage`   hits split into sentences and stemmed once per answer
//! - `select`    scoring sentences against the question and picking the answer's units
//! - `sentence`  cleaning sentences, quotability, sentences that lean on the one before
//! - `recall`    questions about the conversation, answered from recalled messages
//! - `reply`     declining, the "continue" recap, small talk
//! - `suggest`   example questions drawn from the loaded documents, kept when this answerer
//!   answers them well

mod passage;
mod question;
mod recall;
mod reply;
mod select;
mod sentence;
mod suggest;

use std::collections::HashSet;

use async_trait::async_trait;

use super::intent::{intent_of, Intent};
use super::{Answer, AnswerRequest, Answerer, Source};
use crate::acts::conversation_act;
use crate::error::Result;
use crate::families::related_terms;
use crate::index::Index;
use crate::recall::{asks_about_conversation, AskedOf};
pub use crate::replies::{NOTHING_FOUND_REPLY, NOTHING_RECALLED_REPLY, NO_CONVERSATION_REPLY};
use crate::retrieve::{
    asks_why, classify, first_passage_of, is_topic_message, passages_of, plan_for, refers_back,
    HistoryTurn, Hit, MessageKind, RetrieverConfig,
};
use crate::text::{sentence_fingerprints, sentence_spans};
use passage::Passage;
use question::{QueryTerm, Question};
use ragchat_core::Role;
pub(crate) use reply::topic_phrase;
use select::{Limits, Unit};
pub use suggest::example_questions;

/// Tuning of the extractive answerer.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractiveConfig {
    /// A best hit scoring below this is treated as no hit (BM25 score).
    pub min_score: f32,
    /// At most this many sentences per answer.
    pub max_sentences: usize,
    /// Stop adding sentences once the answer is this long (bytes).
    pub max_chars: usize,
    /// Share of the message's own term weight (rare terms weigh more) that must occur in the
    /// hits for an answer.
    pub min_term_coverage: f32,
    /// A term in more than this share of the chunks is generic ("model" in a corpus about
    /// models): it is never offered as a near topic when declining. (Every term also weighs
    /// by its rarity, so generic terms count little anyway.)
    pub generic_term_fraction: f32,
    /// How many example questions "what can you do?" offers (with [`ExtractiveAnswerer::for_index`]).
    pub examples: usize,
    /// Retrieval tuning, used to weigh the question's terms the way the retriever did.
    pub retrieval: RetrieverConfig,
}

impl Default for ExtractiveConfig {
    fn default() -> Self {
        ExtractiveConfig {
            min_score: 1.0,
            max_sentences: 3,
            max_chars: 700,
            min_term_coverage: 0.6,
            generic_term_fraction: 0.1,
            examples: 3,
            retrieval: RetrieverConfig::default(),
        }
    }
}

/// Offline answerer: quotes the sentences of the top hits that answer the question, and cites
/// them.
///
/// What it does, in order:
///
/// - a conversation act (greeting, thanks, goodbye, "what can you do?", see
///   [`crate::conversation_act`]) gets a short reply; "what can you do?" offers example
///   questions drawn from the documents when the answerer was made [`for_index`](Self::for_index);
/// - a question about the conversation itself ("what did I ask about X?", "the command you
///   gave me for the backup", [`crate::asks_about_conversation`]) quotes the message that
///   says it, from the recent conversation or [`AnswerRequest::recalled`] (cited as
///   ``conversation `trip`, 2026-11-20``), or says [`NOTHING_RECALLED_REPLY`];
/// - "Continue" or "Tell me more" with no earlier conversation gets [`NO_CONVERSATION_REPLY`];
/// - "Tell me more" quotes the next sentences of the first hit (the retriever puts the next
///   passage of the previous answer's source there); "Continue" does the same after one
///   sentence recapping the topic and the last question;
/// - anything else is a question: its sentences are scored by the question's terms (weighted
///   by rarity in the corpus when the answerer knows the index), the relevance of their
///   passage, and whether they give the kind of answer asked for (a definition for "What is
///   X?", an instruction or option for "How do I ...?", a reason for "Why?"). The best comes
///   first, then up to [`ExtractiveConfig::max_sentences`] in all, each followed by `[n]`.
///   A sentence that leans on the one before it is quoted with it. Sentences said in earlier
///   answers are skipped, unless one is still clearly the answer. With the index, the
///   opening of the best hit's document (and for "How do I ...?" its sections of steps and
///   named options) are considered too.
///
/// It declines ([`NOTHING_FOUND_REPLY`], naming a near topic when a hit's title or heading
/// carries enough of the question's rare terms) when the best hit is weak, when no single
/// hit covers [`ExtractiveConfig::min_term_coverage`] of the question's own term weight
/// (quoted example phrases left out), or when no sentence, read in its section, covers the
/// question's rarest term and half its weight. A question pointing back ("How do I prevent
/// it?") is answered only from sentences about the earlier topic. It quotes and never
/// paraphrases, so it cannot invent.
#[derive(Debug, Clone, Default)]
pub struct ExtractiveAnswerer {
    config: ExtractiveConfig,
    index: Option<Index>,
    examples: Vec<String>,
}

impl ExtractiveAnswerer {
    /// An answerer with the default tuning that knows nothing of the corpus: all terms weigh
    /// the same and "what can you do?" offers no examples.
    pub fn new() -> Self {
        Self::default()
    }

    /// An answerer with explicit tuning.
    pub fn with_config(config: ExtractiveConfig) -> Self {
        ExtractiveAnswerer {
            config,
            ..Self::default()
        }
    }

    /// An answerer for the documents of `index`: term rarity from the index, and
    /// [`ExtractiveConfig::examples`] example questions from [`crate::example_questions`].
    /// Costs a few searches, once.
    pub fn for_index(index: &Index) -> Self {
        Self::with_config(ExtractiveConfig::default()).with_index(index)
    }

    /// This answerer with term statistics and example questions from `index`.
    pub fn with_index(mut self, index: &Index) -> Self {
        self.index = Some(index.clone());
        self.examples = suggest::example_questions(index, self.config.examples);
        self
    }

    /// Term statistics from `index`, without example questions (for checking examples).
    pub(crate) fn with_term_stats(mut self, index: &Index) -> Self {
        self.index = Some(index.clone());
        self
    }

    /// The example questions offered to "what can you do?".
    pub fn examples(&self) -> &[String] {
        &self.examples
    }

    /// Composes the answer at once; [`Answerer::answer`] streams the same text word by word.
    pub fn compose(&self, request: &AnswerRequest) -> Answer {
        let has_conversation = request
            .history
            .iter()
            .any(|t| t.role == Role::User && is_topic_message(&t.content));
        if let Some(act) = conversation_act(&request.question) {
            return plain(&reply::small_talk(act, has_conversation, &self.examples));
        }
        if let Some(asked) = asks_about_conversation(&request.question) {
            return self.answer_from_recall(request, asked);
        }
        let kind = classify(&request.question);
        let wants_reason = kind == MessageKind::More && asks_why(&request.question);
        let continues = matches!(kind, MessageKind::Continue | MessageKind::More) && !wants_reason;
        if continues && !has_conversation {
            return plain(NO_CONVERSATION_REPLY);
        }
        let said = said_before(&request.history);
        if continues {
            return self.continue_topic(request, kind, &said);
        }
        let Some(best) = request.hits.first() else {
            return plain(NOTHING_FOUND_REPLY);
        };
        if best.score < self.config.min_score {
            return plain(NOTHING_FOUND_REPLY);
        }
        let question = self.question(request, wants_reason);
        let mut passages = passage::prepare(&request.hits, &said);
        if question.needs_own_match
            && question.own_coverage(&passages) < self.config.min_term_coverage
        {
            return self.decline(&question, &passages);
        }
        let extra = self.context_passages(&request.hits, &question);
        passages.extend(passage::prepare(&extra, &said));
        if question.own_weight() == 0.0 {
            // "Why?" asks about what was just said: stay in the documents it came from.
            focus_on_last_answer(&mut passages);
        }
        // Say something new where there is something new.
        let chosen = select::choose(&question, &passages, self.limits(), true);
        if chosen.is_empty() {
            return self.decline(&question, &passages);
        }
        cite(&chosen, &passages)
    }

    /// Passages of the best hit's document that answers of this kind are usually in, when
    /// the answerer knows the index and the hits lack them: the opening, where documents say
    /// what their subject is (what "What is X?" wants and "How do I prevent it?" builds on),
    /// and for "How do I ...?" its sections of steps ("Method", "Usage") and, in a reference
    /// page, the passages with an option named after what is asked ("--extract"). They score
    /// as 0.8 of the best hit.
    fn context_passages(&self, hits: &[Hit], question: &Question) -> Vec<Hit> {
        let intent = question.intent;
        let (Some(index), Some(best)) = (&self.index, hits.first()) else {
            return Vec::new();
        };
        // The opening is the first passage that says something: a manual page starts with a
        // header line, its NAME section says what the command does.
        let says_something = |p: &Hit| {
            sentence_spans(&p.text)
                .into_iter()
                .any(|span| sentence::is_quotable(&sentence::clean_sentence(&p.text[span])))
        };
        let mut wanted = Vec::new();
        match first_passage_of(index, &best.path, &says_something) {
            Ok(opening) => wanted.extend(opening),
            Err(error) => tracing::debug!(%error, "cannot read a document's opening"),
        }
        if intent == Intent::HowTo {
            match passages_of(index, &best.path) {
                Ok(passages) => wanted.extend(passages.into_iter().filter(|p| {
                    select::is_method_heading(&p.heading)
                        || select::names_an_option_for(&p.text, question)
                })),
                Err(error) => tracing::debug!(%error, "cannot read the passages of a document"),
            }
        }
        let mut extra: Vec<Hit> = Vec::new();
        for passage in wanted {
            let present = hits.iter().chain(&extra).any(|h| {
                h.path == passage.path
                    && h.line_start <= passage.line_end
                    && passage.line_start <= h.line_end
            });
            if !present {
                extra.push(Hit {
                    score: best.score * 0.8,
                    ..passage
                });
            }
        }
        extra
    }

    /// A question about the conversation, its topic terms weighted by their rarity in the
    /// documents when the answerer knows them (a term they never use weighs most).
    fn answer_from_recall(&self, request: &AnswerRequest, asked: AskedOf) -> Answer {
        let Some(index) = &self.index else {
            return recall::answer(&request.question, asked, request, &|_| 1.0);
        };
        let searcher = index.searcher();
        let chunks = searcher.num_docs().max(1) as f64;
        let weight = |term: &str| {
            let df = index.doc_freq_in(&searcher, term) as f64;
            ((chunks + 1.0) / (df + 1.0)).ln().max(0.1)
        };
        recall::answer(&request.question, asked, request, &weight)
    }

    fn limits(&self) -> Limits {
        Limits {
            max_sentences: self.config.max_sentences,
            max_chars: self.config.max_chars,
        }
    }

    /// "Continue" and "Tell me more": the next unsaid sentences of the first hit, else the
    /// best unsaid sentences on the topic; "Continue" opens with a recap.
    fn continue_topic(
        &self,
        request: &AnswerRequest,
        kind: MessageKind,
        said: &HashSet<String>,
    ) -> Answer {
        let asked = last_topic_question(&request.history);
        let Some(first) = request.hits.first() else {
            return plain(&format!(
                "We were talking about \"{asked}\", but I couldn't find anything more about it \
                 in the documents."
            ));
        };
        let topic = topic_phrase(&first.title, &first.text);
        // The first hit alone, usually: it is the next passage of the source.
        let mut passages = passage::prepare(&request.hits[..1], said);
        let mut chosen = select::continuation(0, &passages[0], self.limits());
        if chosen.is_empty() {
            passages = passage::prepare(&request.hits, said);
            let question = self.question(request, false);
            chosen = select::choose(&question, &passages, self.limits(), false);
        }
        if chosen.is_empty() {
            return plain(&reply::recap_exhausted(&topic));
        }
        let mut answer = cite(&chosen, &passages);
        if kind == MessageKind::Continue {
            answer.text.insert_str(0, &reply::recap(&topic, &asked));
        }
        answer
    }

    /// The question's terms weighted as the retriever weighs them, times their rarity.
    fn question(&self, request: &AnswerRequest, wants_reason: bool) -> Question {
        let plan = plan_for(
            &request.question,
            &request.history,
            &self.config.retrieval,
            self.index.as_ref(),
        );
        let searcher = self.index.as_ref().map(|i| (i, i.searcher()));
        let stats = searcher.as_ref().map(|(index, searcher)| Stats {
            chunks: searcher.num_docs().max(1),
            doc_freq: Box::new(move |term: &str| index.doc_freq_in(searcher, term)),
        });
        let terms = plan
            .terms
            .iter()
            .map(|t| {
                let (rarity, salient) = match &stats {
                    Some(stats) => {
                        let df = (stats.doc_freq)(&t.term);
                        let idf = ((stats.chunks as f32 + 1.0) / (df as f32 + 1.0))
                            .ln()
                            .max(0.1);
                        let generic = df as f32
                            > (self.config.generic_term_fraction * stats.chunks as f32).max(3.0);
                        (idf, !generic)
                    }
                    None => (1.0, true),
                };
                // "prevent", "pick", "keep": the action asked about weighs less than what it
                // is about ("rust" in "How do I stop it rusting?").
                let action = if related_terms(&t.term).is_empty() {
                    1.0
                } else {
                    0.5
                };
                QueryTerm {
                    term: t.term.clone(),
                    weight: t.weight * rarity * action,
                    borrowed: t.borrowed,
                    salient,
                }
            })
            .collect::<Vec<_>>();
        let has_own = terms.iter().any(|t| !t.borrowed);
        let has_topic = terms.iter().any(|t| t.borrowed);
        let points_back = refers_back(&request.question);
        Question {
            intent: if wants_reason {
                Intent::Why
            } else {
                intent_of(&request.question)
            },
            needs_own_match: has_own,
            needs_topic_match: has_topic && (points_back || !has_own),
            terms,
        }
    }

    fn decline(&self, question: &Question, passages: &[Passage<'_>]) -> Answer {
        let near = question
            .near_topic(passages)
            .map(|hit| topic_phrase(&hit.title, &hit.text));
        plain(&reply::decline(near.as_deref()))
    }
}

/// Corpus statistics for weighing terms.
struct Stats<'a> {
    chunks: u64,
    doc_freq: Box<dyn Fn(&str) -> u64 + 'a>,
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
        ..Answer::default()
    }
}

/// Writes the chosen units with `[n]` markers; sources numbered by first citation.
fn cite(chosen: &[Unit], passages: &[Passage<'_>]) -> Answer {
    let mut numbers: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut sources = Vec::new();
    let mut parts = Vec::with_capacity(chosen.len());
    for unit in chosen {
        let number = *numbers.entry(unit.hit).or_insert_with(|| {
            sources.push(Source::from(passages[unit.hit].hit));
            sources.len()
        });
        parts.push(format!("{} [{number}]", unit.text));
    }
    Answer {
        text: parts.join(" "),
        sources,
        ..Answer::default()
    }
}

/// The most recent user question that had a topic of its own, for the "Continue" recap.
///
/// A question the documents did not cover is skipped: the conversation's topic is the last
/// one they answered.
fn last_topic_question(history: &[HistoryTurn]) -> String {
    let questions = || {
        history
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, t)| t.role == Role::User && is_topic_message(&t.content))
    };
    let answered = |at: usize| {
        !history
            .get(at + 1)
            .is_some_and(|reply| reply.content.starts_with(NOTHING_FOUND_REPLY))
    };
    let turn = questions()
        .find(|(at, _)| answered(*at))
        .or_else(|| questions().next())
        .map(|(_, t)| t);
    let question = turn.map_or("", |t| t.content.trim());
    sentence::truncate_chars(question, 120)
}

/// Keeps the passages from the documents earlier answers quoted (a passage with a sentence
/// said before), when there are any.
fn focus_on_last_answer(passages: &mut Vec<Passage<'_>>) {
    let quoted: HashSet<String> = passages
        .iter()
        .filter(|p| p.sentences.iter().any(|s| s.said))
        .map(|p| p.hit.path.clone())
        .collect();
    if !quoted.is_empty() {
        passages.retain(|p| quoted.contains(&p.hit.path));
    }
}

/// Sentences the assistant already said, fingerprinted, so a follow-up adds something new.
fn said_before(history: &[HistoryTurn]) -> HashSet<String> {
    history
        .iter()
        .filter(|t| t.role == Role::Assistant)
        .flat_map(|t| sentence_fingerprints(&t.content))
        .collect()
}

#[cfg(test)]
mod tests;
