//! Choosing the sentences of an extractive answer.
//!
//! Every quotable sentence of the hits is scored by how much of the question it covers (terms
//! weighted by how rare they are in the corpus, so "cream" counts for more than "add"), how
//! relevant its passage is, and whether it gives the kind of answer the question asks for
//! (see [`super::super::intent`]). A sentence that leans on the one before it ("It ...",
//! "... learns both.") is quoted together with that sentence or not at all. The best unit
//! comes first, as the short answer; supporting units follow in document order.

use std::collections::HashSet;

use super::super::intent::{related_terms, Intent, SentenceCues};
use super::sentence::{about_the_document, clean_sentence, is_quotable, leans_on_previous};
use crate::retrieve::Hit;
use crate::text::{analyze, fingerprint, is_list_item, sentence_spans};

/// Share of the question's own term weight a quoted sentence must cover, with its section's
/// title and headings.
const MIN_SENTENCE_COVERAGE: f32 = 0.5;
/// What a question term found only in a sentence's section title or heading is worth, against
/// the sentence saying it.
const CONTEXT_SHARE: f32 = 0.6;

/// One query term as the selection weighs it.
#[derive(Debug, Clone)]
pub(super) struct QueryTerm {
    pub term: String,
    /// Plan weight (1 for the message's own terms) times the term's rarity.
    pub weight: f32,
    pub borrowed: bool,
    /// In few enough chunks to carry a topic ("cream"), unlike "add" or "model".
    pub salient: bool,
}

/// The question as the selection sees it.
#[derive(Debug, Clone)]
pub(super) struct Question {
    pub terms: Vec<QueryTerm>,
    pub intent: Intent,
    /// Every quoted sentence must match one of the message's own salient terms.
    pub needs_own_match: bool,
    /// Every quoted sentence must be about the earlier topic (its terms in the sentence or in
    /// its passage's title or headings): the message points back with a pronoun.
    pub needs_topic_match: bool,
}

impl Question {
    fn own(&self) -> impl Iterator<Item = &QueryTerm> {
        self.terms.iter().filter(|t| !t.borrowed)
    }

    fn total_weight(&self) -> f32 {
        self.terms.iter().map(|t| t.weight).sum()
    }

    /// Whether a term set contains `term`, or a word of its family ("reduces" for "prevent").
    fn matches(terms: &HashSet<String>, term: &QueryTerm) -> bool {
        terms.contains(&term.term)
            || (!term.borrowed && related_terms(&term.term).iter().any(|r| terms.contains(*r)))
    }
}

/// A quotable piece of an answer: one sentence, or a sentence with the one(s) it leans on.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub hit: usize,
    /// The document of the hit.
    pub path: String,
    /// The question's terms (own and borrowed) the unit covers, itself or through its
    /// section's headings.
    pub covered: Vec<String>,
    /// Sentence positions within the hit, in order.
    pub positions: Vec<usize>,
    pub text: String,
    pub score: f32,
    /// Sentences in the unit.
    pub sentences: usize,
}

/// A sentence of a hit, prepared once.
struct Sentence {
    text: String,
    quotable: bool,
    said: bool,
    leans: bool,
    list_item: bool,
}

fn sentences_of(hit: &Hit, said: &HashSet<String>) -> Vec<Sentence> {
    sentence_spans(&hit.text)
        .into_iter()
        .map(|span| {
            let raw = &hit.text[span];
            let text = clean_sentence(raw);
            Sentence {
                quotable: is_quotable(&text) && !about_the_document(&text),
                said: said.contains(&fingerprint(&text)),
                leans: leans_on_previous(&text),
                list_item: is_list_item(raw),
                text,
            }
        })
        .collect()
}

/// Limits of one answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub max_sentences: usize,
    pub max_chars: usize,
}

/// Scores the sentences of `hits` for `question` and picks the answer's units, best first.
pub(super) fn choose(
    question: &Question,
    hits: &[Hit],
    said: &HashSet<String>,
    limits: Limits,
) -> Vec<Unit> {
    let Some(best) = hits.first() else {
        return Vec::new();
    };
    let total = question.total_weight();
    if total <= 0.0 {
        return Vec::new();
    }
    let own_total: f32 = question.own().map(|t| t.weight).sum();
    let mut units = Vec::new();
    for (index, hit) in hits.iter().enumerate() {
        let chunk_factor = (hit.score / best.score.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
        let context: HashSet<String> = analyze(&format!("{}\n{}", hit.title, hit.heading))
            .into_iter()
            .collect();
        let topic_in_context = question
            .terms
            .iter()
            .any(|t| t.borrowed && context.contains(&t.term));
        let sentences = sentences_of(hit, said);
        for (position, sentence) in sentences.iter().enumerate() {
            if !sentence.quotable || sentence.said {
                continue;
            }
            let terms: HashSet<String> = analyze(&without_quoted_phrases(&sentence.text))
                .into_iter()
                .collect();
            let mut own_weight = 0.0;
            let mut topic_weight = 0.0;
            // A term the sentence does not say but its section's title or heading does counts
            // for part: the sentence is about it, without naming it.
            let mut read_in_context = 0.0;
            let mut covered = Vec::new();
            for term in &question.terms {
                let said = Question::matches(&terms, term);
                let in_context = Question::matches(&context, term);
                if said {
                    if term.borrowed {
                        topic_weight += term.weight;
                    } else {
                        own_weight += term.weight;
                    }
                    read_in_context += term.weight;
                } else if in_context {
                    read_in_context += CONTEXT_SHARE * term.weight;
                }
                if said || in_context {
                    covered.push(term.term.clone());
                }
            }
            if own_weight + topic_weight == 0.0 {
                continue;
            }
            if question.needs_own_match {
                // The sentence, read in its section, must cover most of what was asked (rare
                // terms weigh more: "add" alone does not answer "Should I add cream?"), and
                // say part of it itself unless the question points back at the topic.
                let own_covered: f32 = question
                    .own()
                    .filter(|t| covered.contains(&t.term))
                    .map(|t| t.weight)
                    .sum();
                if own_covered < MIN_SENTENCE_COVERAGE * own_total {
                    continue;
                }
                if own_weight == 0.0 && !question.needs_topic_match {
                    continue;
                }
            }
            if question.needs_topic_match && topic_weight == 0.0 && !topic_in_context {
                continue;
            }
            let cues = SentenceCues::of(&sentence.text, sentence.list_item);
            let serves = cues.serves(question.intent)
                && (question.intent != Intent::Definition
                    || defines_a_query_term(&sentence.text, question));
            let method_section =
                question.intent == Intent::HowTo && is_method_heading(&hit.heading);
            // The first sentence under a document's title is where it says what its subject
            // is: the definition "What is X?" wants, over a later "a cluster is ..." aside.
            let document_lead = position == 0 && hit.heading == hit.title;
            let defines_subject = serves && question.intent == Intent::Definition && document_lead;
            let substance = (terms.len() as f32 / 10.0).min(1.0);
            let mut score = read_in_context / total
                + 0.4 * chunk_factor
                + if serves {
                    intent_bonus(question.intent)
                } else {
                    0.0
                }
                + if method_section { 0.2 } else { 0.0 }
                + if defines_subject { 0.2 } else { 0.0 }
                + if position == 0 { 0.1 } else { 0.0 }
                + 0.2 * substance;
            let mut unit = Unit {
                hit: index,
                covered,
                path: hit.path.clone(),
                positions: vec![position],
                text: sentence.text.clone(),
                score: 0.0,
                sentences: 1,
            };
            if sentence.leans && !attach_antecedents(&mut unit, &sentences) {
                // Nothing before it in this passage to lean on: quoted alone it would
                // refer to something the reader never saw.
                score -= 0.5;
            }
            unit.score = score;
            units.push(unit);
        }
    }
    pick(units, limits)
}

/// Whether a heading names a section of steps ("Method", "Making stock", "Usage"): where a
/// how-to note or a reference page says how to do its thing.
pub(super) fn is_method_heading(heading: &str) -> bool {
    const CUES: [&str; 12] = [
        "method",
        "steps",
        "how to",
        "instructions",
        "directions",
        "procedure",
        "usage",
        "making",
        "recipe",
        "preparation",
        "examples",
        "synopsis",
    ];
    let section = heading
        .rsplit(" > ")
        .next()
        .unwrap_or(heading)
        .to_lowercase();
    CUES.iter().any(|cue| section.contains(cue))
}

/// How much giving the asked kind of answer is worth, against term coverage (0 to 1). A
/// "how long" question is not answered without a number at all; for a definition the subject
/// terms already do much of the work.
fn intent_bonus(intent: Intent) -> f32 {
    match intent {
        Intent::Quantity => 0.6,
        Intent::Definition | Intent::Why => 0.4,
        Intent::HowTo | Intent::Comparison => 0.35,
        Intent::List => 0.2,
        Intent::YesNo | Intent::Other => 0.0,
    }
}

/// Prepends the sentence(s) `unit` leans on; false when there is none to prepend.
fn attach_antecedents(unit: &mut Unit, sentences: &[Sentence]) -> bool {
    let mut position = unit.positions[0];
    for _ in 0..2 {
        let Some(previous) = position.checked_sub(1).and_then(|p| sentences.get(p)) else {
            return false;
        };
        if previous.said {
            // The reader has just seen it.
            return true;
        }
        if !is_quotable(&previous.text) && !previous.text.ends_with(':') {
            return false;
        }
        position -= 1;
        unit.positions.insert(0, position);
        unit.text = format!("{} {}", previous.text, unit.text);
        unit.sentences += 1;
        if !previous.leans {
            return true;
        }
    }
    false
}

/// Whether the sentence's subject (the words before its copula) contains a query term:
/// "Overfitting happens when ..." defines overfitting; "A model overfits when ..." does not
/// define "when".
fn defines_a_query_term(sentence: &str, question: &Question) -> bool {
    const COPULAS: [&str; 7] = [
        " is ",
        " are ",
        " means ",
        " refers to ",
        " happens when ",
        " occurs when ",
        " describes ",
    ];
    let lower = sentence.to_lowercase();
    let Some(cut) = COPULAS.iter().filter_map(|c| lower.find(c)).min() else {
        return false;
    };
    let after = &lower[cut..];
    let defining = !after.starts_with(" is ") && !after.starts_with(" are ")
        || after.split_whitespace().nth(1).is_some_and(|w| {
            matches!(
                w,
                "a" | "an" | "the" | "when" | "one" | "any" | "how" | "what" | "called"
            )
        });
    let subject: HashSet<String> = analyze(&sentence[..cut]).into_iter().collect();
    defining && question.terms.iter().any(|t| subject.contains(&t.term))
}

/// The best unit first, then supporting units in document order, within the limits.
fn pick(mut units: Vec<Unit>, limits: Limits) -> Vec<Unit> {
    units.sort_by(|a, b| b.score.total_cmp(&a.score));
    let Some(top) = units.first().map(|u| u.score) else {
        return Vec::new();
    };
    let mut chosen: Vec<Unit> = Vec::new();
    let mut used: HashSet<(usize, usize)> = HashSet::new();
    let mut sentences = 0;
    let mut length = 0;
    for unit in units {
        if sentences >= limits.max_sentences {
            break;
        }
        let first = chosen.is_empty();
        // Support from another document must be nearly as good: an answer that wanders off
        // to a second article for a weak match reads as a mash-up.
        let other_document = chosen
            .first()
            .is_some_and(|lead: &Unit| lead.path != unit.path);
        let bar = if other_document { 0.8 } else { 0.55 };
        if !first
            && (unit.score < top * bar
                || sentences + unit.sentences > limits.max_sentences
                || length + unit.text.len() > limits.max_chars)
        {
            continue;
        }
        if unit
            .positions
            .iter()
            .any(|p| used.contains(&(unit.hit, *p)))
        {
            continue;
        }
        // Support says more about what the answer is about: it covers every term of the
        // question the lead covers ("10 minutes" for hard-boiled eggs does not support an
        // answer on soft-boiled ones).
        let supports = chosen
            .first()
            .is_none_or(|lead: &Unit| lead.covered.iter().all(|t| unit.covered.contains(t)));
        if !supports {
            continue;
        }
        used.extend(unit.positions.iter().map(|p| (unit.hit, *p)));
        sentences += unit.sentences;
        length += unit.text.len() + 5;
        chosen.push(unit);
    }
    if let Some((lead, supporting)) = chosen.split_first_mut() {
        // The lead's own passage continues first, in document order.
        supporting.sort_by_key(|u| (u.hit != lead.hit, u.hit, u.positions[0]));
    }
    chosen
}

/// Units that continue a passage: its sentences not said yet, in order, within the limits
/// (for "tell me more", where the next passage of the same source is the answer).
pub(super) fn continuation(
    hit_index: usize,
    hit: &Hit,
    said: &HashSet<String>,
    limits: Limits,
) -> Vec<Unit> {
    let sentences = sentences_of(hit, said);
    let mut units = Vec::new();
    let mut length = 0;
    for (position, sentence) in sentences.iter().enumerate() {
        if units.len() >= limits.max_sentences {
            break;
        }
        if !sentence.quotable || sentence.said {
            continue;
        }
        if !units.is_empty() && length + sentence.text.len() > limits.max_chars {
            break;
        }
        length += sentence.text.len() + 5;
        units.push(Unit {
            hit: hit_index,
            covered: Vec::new(),
            path: hit.path.clone(),
            positions: vec![position],
            text: sentence.text.clone(),
            score: 1.0,
            sentences: 1,
        });
    }
    units
}

/// The largest share of the message's own term weight that one hit covers (title, headings,
/// text; quoted example phrases left out). Catches questions that share a word or two with
/// the documents by chance ("Who won the 1998 World Cup?") or only with an example quoted in
/// them ("The capital of France is"), whose subject the documents do not cover.
pub(super) fn own_coverage(question: &Question, hits: &[Hit]) -> f32 {
    let own_total: f32 = question.own().map(|t| t.weight).sum();
    if own_total <= 0.0 {
        return 1.0;
    }
    hits.iter()
        .map(|hit| {
            let text = format!("{}\n{}\n{}", hit.title, hit.heading, hit.text);
            let present: HashSet<String> = analyze(&without_quoted_phrases(&text))
                .into_iter()
                .collect();
            let covered: f32 = question
                .own()
                .filter(|t| Question::matches(&present, t))
                .map(|t| t.weight)
                .sum();
            covered / own_total
        })
        .fold(0.0, f32::max)
}

/// `text` without the phrases it quotes ("The capital of France is,"): a quoted phrase is an
/// example or a mention, not what the text is about. Single quoted words ("called
/// \"epochs\"") stay, since definitions quote the term they define.
pub(super) fn without_quoted_phrases(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['"', '“']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['"', '“']) {
        let quote_len = rest[open..].chars().next().map_or(1, char::len_utf8);
        let after = &rest[open + quote_len..];
        let Some(close) = after.find(['"', '”']) else {
            break;
        };
        let quoted = &after[..close];
        out.push_str(&rest[..open]);
        if quoted.split_whitespace().count() < 2 {
            out.push(' ');
            out.push_str(quoted);
            out.push(' ');
        }
        let close_len = after[close..].chars().next().map_or(1, char::len_utf8);
        rest = &after[close + close_len..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// The hit whose title or headings name one of the message's salient terms: what the
/// documents cover near a question they do not answer.
pub(super) fn near_topic<'h>(question: &Question, hits: &'h [Hit]) -> Option<&'h Hit> {
    hits.iter().find(|hit| {
        let context: HashSet<String> = analyze(&format!("{}\n{}", hit.title, hit.heading))
            .into_iter()
            .collect();
        question
            .own()
            .any(|t| t.salient && context.contains(&t.term))
    })
}
