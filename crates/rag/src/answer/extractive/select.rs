//! Choosing the sentences of an extractive answer.
//!
//! Every quotable sentence of the hits is scored by how much of the question it covers (terms
//! weighted by how rare they are in the corpus, so "cream" counts for more than "add"; a term
//! named only by the sentence's section heading counts for part), how relevant its passage is,
//! and whether it gives the kind of answer the question asks for (see
//! [`super::super::intent`]). A sentence must cover the question's rarest term that the hits
//! contain and most of its term weight. A sentence that leans on the one before it ("It ...",
//! "... learns both.") is quoted together with that sentence or not at all. The best unit
//! comes first, as the short answer; supporting units that cover at least what it covers
//! follow, the lead's own passage first, in document order.

use std::collections::HashSet;

use super::super::intent::{Intent, SentenceCues};
use super::question::{without_quoted_phrases, Question};
use super::sentence::{about_the_document, clean_sentence, is_quotable, leans_on_previous};
use crate::retrieve::Hit;
use crate::text::{analyze, fingerprint, is_list_item, sentence_spans};

/// Share of the question's own term weight a quoted sentence must cover, with its section's
/// title and headings.
const MIN_SENTENCE_COVERAGE: f32 = 0.5;
/// What a question term found only in a sentence's section title or heading is worth, against
/// the sentence saying it.
const CONTEXT_SHARE: f32 = 0.6;

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
    /// Its sentence was said in an earlier answer.
    pub said: bool,
}

/// A sentence of a hit, prepared once.
struct Sentence {
    text: String,
    /// Starts a paragraph (a blank line before it).
    opens_paragraph: bool,
    quotable: bool,
    said: bool,
    leans: bool,
    list_item: bool,
}

fn sentences_of(hit: &Hit, said: &HashSet<String>) -> Vec<Sentence> {
    let mut end_of_previous = 0;
    sentence_spans(&hit.text)
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
            Sentence {
                opens_paragraph,
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
///
/// Sentences said in earlier answers are left out, unless one of them is clearly the answer
/// (it scores a quarter above every new one) and `allow_repeat`: then it leads again rather
/// than a worse new sentence taking its place.
pub(super) fn choose(
    question: &Question,
    hits: &[Hit],
    said: &HashSet<String>,
    limits: Limits,
    allow_repeat: bool,
) -> Vec<Unit> {
    let Some(best) = hits.first() else {
        return Vec::new();
    };
    let total = question.total_weight();
    let own_total = question.own_weight();
    if total <= 0.0 {
        return Vec::new();
    }
    let required = question.required_term(hits).map(|t| t.term.clone());
    // "Why?" with no words of its own asks about what was just said: the sentences right
    // after it usually give the reason.
    let reason_after_said = question.intent == Intent::Why && own_total == 0.0;
    let mut units = Vec::new();
    for (index, hit) in hits.iter().enumerate() {
        let chunk_factor = (hit.score / best.score.max(f32::MIN_POSITIVE)).clamp(0.0, 1.0);
        let context: HashSet<String> = analyze(&format!("{}\n{}", hit.title, hit.heading))
            .into_iter()
            .collect();
        let sentences = sentences_of(hit, said);
        // The terms of the two sentences before the current one.
        let mut previous_terms: [HashSet<String>; 2] = Default::default();
        for (position, sentence) in sentences.iter().enumerate() {
            let terms: HashSet<String> = analyze(&without_quoted_phrases(&sentence.text))
                .into_iter()
                .collect();
            // A sentence is read in its section (title and headings) after the sentences
            // before it in its paragraph: "A setting called temperature controls ..." answers
            // "What does the temperature setting do when generating text?" after "To generate
            // text, ...".
            if sentence.opens_paragraph {
                previous_terms = Default::default();
            }
            let surroundings: HashSet<String> = context
                .iter()
                .chain(previous_terms.iter().flatten())
                .cloned()
                .collect();
            previous_terms.rotate_left(1);
            previous_terms[1] = terms.clone();
            if !sentence.quotable || (sentence.said && !allow_repeat) {
                continue;
            }
            let says = question.coverage(&terms);
            let in_context = question.coverage(&surroundings);
            let cues = SentenceCues::of(&sentence.text, sentence.list_item);
            let serves = cues.serves(question.intent)
                && (question.intent != Intent::Definition
                    || defines_a_query_term(&sentence.text, question));
            let follows_said = reason_after_said
                && position
                    .checked_sub(1)
                    .and_then(|p| sentences.get(p))
                    .is_some_and(|s| s.said);
            // A sentence need not repeat the question's words when its section is titled
            // with them and it gives what was asked: "usually 1 to 2 hours" under "Proving"
            // answers "How long should it prove?".
            let answers_in_context = follows_said
                || (serves
                    && matches!(
                        question.intent,
                        Intent::Quantity | Intent::HowTo | Intent::Why
                    ));
            if says.own + says.topic == 0.0 && !answers_in_context {
                continue;
            }
            let covered: Vec<String> = question
                .terms
                .iter()
                .filter(|t| says.terms.contains(&t.term) || in_context.terms.contains(&t.term))
                .map(|t| t.term.clone())
                .collect();
            if required.as_ref().is_some_and(|r| !covered.contains(r)) {
                continue;
            }
            if question.needs_own_match {
                // Read in its section, the sentence must cover most of what was asked, and
                // say part of it itself unless the question points back at the topic.
                let own_covered: f32 = question
                    .own()
                    .filter(|t| covered.contains(&t.term))
                    .map(|t| t.weight)
                    .sum();
                if own_covered < MIN_SENTENCE_COVERAGE * own_total {
                    continue;
                }
                if says.own == 0.0 && !question.needs_topic_match && !answers_in_context {
                    continue;
                }
            }
            if question.needs_topic_match && says.topic == 0.0 && in_context.topic == 0.0 {
                continue;
            }
            // A term the sentence does not say but its section's title or heading does counts
            // for part: the sentence is about it without naming it.
            let context_only: f32 = question
                .terms
                .iter()
                .filter(|t| in_context.terms.contains(&t.term) && !says.terms.contains(&t.term))
                .map(|t| t.weight)
                .sum();
            let relevance = (says.own + says.topic + CONTEXT_SHARE * context_only) / total;
            let method_section =
                question.intent == Intent::HowTo && is_method_heading(&hit.heading);
            // The first sentence under a document's title is where it says what its subject
            // is: the definition "What is X?" wants, over a later "a cluster is ..." aside.
            let document_lead = position == 0 && hit.heading == hit.title;
            let defines_subject = serves && question.intent == Intent::Definition && document_lead;
            let names_option = question.intent == Intent::HowTo
                && option_names(&sentence.text).is_some_and(|names| {
                    let named: HashSet<String> = analyze(names).into_iter().collect();
                    question.coverage(&named).own > 0.0
                });
            // Of two option lines for "sort numerically", "--numeric-sort" (few other words)
            // is the one asked for, not "--human-numeric-sort compare human readable numbers".
            let precision = says.terms.len() as f32 / terms.len().max(1) as f32;
            let substance = (terms.len() as f32 / 10.0).min(1.0);
            let mut score = relevance
                + 0.4 * chunk_factor
                + bonus(serves, intent_bonus(question.intent))
                + bonus(method_section, 0.2)
                + bonus(defines_subject, 0.2)
                + bonus(follows_said, 0.4)
                + bonus(names_option, 0.3)
                + bonus(position == 0, 0.1)
                + 0.2 * substance
                + 0.15 * precision;
            let mut unit = Unit {
                hit: index,
                said: sentence.said,
                covered,
                path: hit.path.clone(),
                positions: vec![position],
                text: sentence.text.clone(),
                score: 0.0,
                sentences: 1,
            };
            if sentence.leans {
                if attach_antecedents(&mut unit, &sentences) {
                    // Two sentences for the content of one: worth it only if clearly better.
                    score -= 0.15 * (unit.sentences - 1) as f32;
                } else {
                    // Nothing before it in this passage to lean on: quoted alone it would
                    // refer to something the reader never saw.
                    score -= 0.5;
                }
            }
            unit.score = score;
            units.push(unit);
        }
    }
    if allow_repeat {
        let best = |said: bool| {
            units
                .iter()
                .filter(|u| u.said == said)
                .map(|u| u.score)
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let (best_said, best_new) = (best(true), best(false));
        if best_said > best_new * 1.25 || best_new == f32::NEG_INFINITY {
            // The answer was said before and is still the answer: repeat it, alone.
            units.retain(|u| u.said);
            units.sort_by(|a, b| b.score.total_cmp(&a.score));
            units.truncate(1);
        } else {
            units.retain(|u| !u.said);
        }
    }
    pick(units, limits)
}

/// Whether `text` has an option line whose names carry one of the question's own terms
/// ("-x, --extract, --get" for "How do I extract it?").
pub(super) fn names_an_option_for(text: &str, question: &Question) -> bool {
    text.lines().any(|line| {
        option_names(line.trim()).is_some_and(|names| {
            let named: HashSet<String> = analyze(names).into_iter().collect();
            question.coverage(&named).own > 0.0
        })
    })
}

/// The option names a reference page's option line starts with ("-x, --extract, --get" of
/// "-x, --extract, --get Extract files from an archive."), or `None` for other sentences.
fn option_names(sentence: &str) -> Option<&str> {
    if !sentence.starts_with('-') {
        return None;
    }
    let mut end = 0;
    for word in sentence.split_inclusive(' ') {
        let token = word.trim().trim_end_matches(',');
        if !token.starts_with('-') {
            break;
        }
        end += word.len();
    }
    (end > 0).then(|| &sentence[..end])
}

fn bonus(condition: bool, value: f32) -> f32 {
    if condition {
        value
    } else {
        0.0
    }
}

/// Whether a heading names a section of steps ("Method", "Making stock", "Usage"): where a
/// how-to note or a reference page says how to do its thing.
pub(super) fn is_method_heading(heading: &str) -> bool {
    const CUES: [&str; 11] = [
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

/// Whether the sentence defines a query term: its subject (the words before "is", "means",
/// "refers to", ", short for" ... or before the " - " of a manual page's NAME line) contains
/// one. "Overfitting happens when ..." defines overfitting; "A model overfits when ..." does
/// not define "when".
fn defines_a_query_term(sentence: &str, question: &Question) -> bool {
    const LINKS: [&str; 10] = [
        " is ",
        " are ",
        " means ",
        " refers to ",
        " happens when ",
        " occurs when ",
        " describes ",
        ", short for ",
        " stands for ",
        " - ",
    ];
    let lower = sentence.to_lowercase();
    let Some(cut) = LINKS.iter().filter_map(|c| lower.find(c)).min() else {
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
    // "DBSCAN takes a different approach: a cluster is ..." defines "a cluster".
    let clause = sentence[..cut]
        .rsplit([':', ';'])
        .next()
        .unwrap_or_default();
    let subject: HashSet<String> = analyze(clause).into_iter().collect();
    defining
        && clause.split_whitespace().count() <= 8
        && question.terms.iter().any(|t| subject.contains(&t.term))
}

/// The best unit first, then supporting units within the limits.
fn pick(mut units: Vec<Unit>, limits: Limits) -> Vec<Unit> {
    units.sort_by(|a, b| b.score.total_cmp(&a.score));
    let Some(top) = units.first().map(|u| u.score) else {
        return Vec::new();
    };
    let mut chosen: Vec<Unit> = Vec::new();
    let mut used: HashSet<(usize, usize)> = HashSet::new();
    let mut texts: HashSet<String> = HashSet::new();
    let mut sentences = 0;
    let mut length = 0;
    for unit in units {
        if sentences >= limits.max_sentences {
            break;
        }
        if let Some(lead) = chosen.first() {
            // Support from another document must be nearly as good: an answer that wanders
            // off to a second article for a weak match reads as a mash-up.
            let bar = if lead.path == unit.path { 0.55 } else { 0.8 };
            if unit.score < top * bar
                || sentences + unit.sentences > limits.max_sentences
                || length + unit.text.len() > limits.max_chars
            {
                continue;
            }
            // Support says more about what the answer is about: it covers every term of the
            // question the lead covers ("10 minutes" for hard-boiled eggs does not support an
            // answer on soft-boiled ones).
            if !lead.covered.iter().all(|t| unit.covered.contains(t)) {
                continue;
            }
        }
        if unit
            .positions
            .iter()
            .any(|p| used.contains(&(unit.hit, *p)))
            || !texts.insert(fingerprint(&unit.text))
        {
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
            said: false,
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
