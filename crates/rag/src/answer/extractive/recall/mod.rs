//! Answering a question about the conversation ("what did I ask about learning rates?",
//! "the command you gave me for the backup") from the messages recalled for the turn:
//! the message that says it is quoted and cited as ``conversation `trip`, 2026-11-20``.

use std::collections::HashSet;

use super::sentence::truncate_chars;
use super::{plain, Answer, AnswerRequest, Source};
use crate::recall::{
    asked_place, asks_about_conversation, recall_query, AskedOf, Place, RecalledTurn,
};
use crate::replies::NOTHING_RECALLED_REPLY;
use crate::text::analyze;
use ragchat_core::Role;

/// Longest quote of a recalled message, in characters.
const MAX_QUOTE_CHARS: usize = 300;
/// At most this many recalled messages are quoted.
const MAX_QUOTES: usize = 2;
/// Share of the question's topic (terms weighted by rarity) a message must hold to be
/// quoted.
const MIN_TOPIC_COVERAGE: f64 = 0.6;

/// The answer to a question about the conversation; `asked` says whose words it wants,
/// `weight` how much a topic term says (its rarity in the documents: "making" says less
/// than "risotto").
pub(super) fn answer(
    question: &str,
    asked: AskedOf,
    request: &AnswerRequest,
    weight: &dyn Fn(&str) -> f64,
) -> Answer {
    let named = asked_place(question);
    let topic: Vec<(String, f64)> = analyze(&recall_query(question))
        .into_iter()
        .collect::<HashSet<_>>()
        .into_iter()
        .map(|term| {
            let w = weight(&term);
            (term, w)
        })
        .collect();
    let total: f64 = topic.iter().map(|(_, w)| w).sum();
    if topic.is_empty() || total <= 0.0 {
        return by_place(request, asked, named == Some(Place::First));
    }
    let coverage = |content: &str| {
        let terms: HashSet<String> = analyze(content).into_iter().collect();
        let covered: f64 = topic
            .iter()
            .filter(|(term, _)| terms.contains(term))
            .map(|(_, w)| w)
            .sum();
        covered / total
    };
    // The recalled messages, and the recent conversation's own (not searched: they are
    // in the window), newest first.
    let recent = request.history.iter().rev().map(|t| Said {
        role: t.role,
        content: &t.content,
        recalled: None,
    });
    let recalled = request.recalled.iter().map(|t| Said {
        role: t.at.role,
        content: &t.content,
        recalled: Some(t),
    });
    // "My first question about X" is the oldest message on the topic, "my last question
    // about X" the newest, by when it was written; otherwise the window's most recent
    // comes first, then the search's best.
    let oldest_first = oldest_first(request);
    let newest_first =
        |rank| request.history.len() + request.recalled.len() - 1 - oldest_first(rank);
    let mut candidates: Vec<Candidate<'_>> = recent
        .chain(recalled)
        .enumerate()
        .filter(|(_, said)| !is_about_recall(said))
        .map(|(rank, said)| Candidate {
            covered: coverage(said.content),
            wanted: asked.wants(said.role),
            order: match named {
                Some(Place::First) => oldest_first(rank),
                Some(Place::Last) => newest_first(rank),
                None => rank,
            },
            said,
        })
        .filter(|c| c.covered >= MIN_TOPIC_COVERAGE)
        .collect();
    // Most of the topic first, then whose words were asked for, then the order above.
    candidates.sort_by(|a, b| {
        b.covered
            .total_cmp(&a.covered)
            .then(b.wanted.cmp(&a.wanted))
            .then(a.order.cmp(&b.order))
    });
    let Some(best) = candidates.first() else {
        return plain(NOTHING_RECALLED_REPLY);
    };
    let (best_coverage, best_wanted) = (best.covered, best.wanted);
    let chosen = candidates
        .iter()
        .filter(|c| c.covered == best_coverage && c.wanted == best_wanted)
        .take(if named.is_some() { 1 } else { MAX_QUOTES });
    let mut parts = Vec::with_capacity(MAX_QUOTES);
    let mut sources = Vec::with_capacity(MAX_QUOTES);
    for Candidate { said, .. } in chosen {
        match said.recalled {
            Some(turn) => {
                sources.push(Source::from(turn));
                parts.push(format!("{} [{}]", quote(said, place(turn)), sources.len()));
            }
            None => parts.push(quote(said, "A little earlier in this conversation".into())),
        }
    }
    Answer {
        text: parts.join(" "),
        sources,
        ..Answer::default()
    }
}

/// A message that may be quoted: a recent one of this conversation or a recalled one.
#[derive(Clone, Copy)]
struct Said<'a> {
    role: Role,
    content: &'a str,
    recalled: Option<&'a RecalledTurn>,
}

/// A message on the question's topic, with what ranks it.
struct Candidate<'a> {
    /// Share of the topic it holds.
    covered: f64,
    /// Whether it is by whom the question asks about.
    wanted: bool,
    /// Its place in the order asked for: by time (oldest or newest first) when the
    /// question names a place, else the window's newest first, then the search's best.
    order: usize,
    said: Said<'a>,
}

/// For the rank of a message among the window's, newest first, then the recalled ones:
/// its place in time, oldest first. The recalled messages go by when they were written
/// (they are older than the window, or from other conversations), then the window's,
/// which hold no time but their order.
fn oldest_first(request: &AnswerRequest) -> impl Fn(usize) -> usize {
    let (window, recalled) = (request.history.len(), &request.recalled);
    let mut written: Vec<usize> = (0..recalled.len()).collect();
    written.sort_by(|&a, &b| {
        let (a, b) = (&recalled[a].at, &recalled[b].at);
        (a.created_at.as_str(), a.seq).cmp(&(b.created_at.as_str(), b.seq))
    });
    let mut age = vec![0; recalled.len()];
    for (place, &i) in written.iter().enumerate() {
        age[i] = place;
    }
    move |rank| match rank.checked_sub(window) {
        Some(i) => age[i],
        None => age.len() + window - 1 - rank,
    }
}

/// Whether a message is itself about recalling ("what did I ask about X?", or an answer
/// to one): quoting it would answer the question with the question.
fn is_about_recall(said: &Said<'_>) -> bool {
    match said.role {
        Role::User => asks_about_conversation(said.content).is_some(),
        Role::Assistant => {
            let text = said.content.trim_start();
            RECALL_OPENINGS
                .iter()
                .any(|opening| text.starts_with(opening))
                || text.starts_with(NOTHING_RECALLED_REPLY)
        }
        Role::System => false,
    }
}

/// How the answers that quote a message by its place start (see [`by_place`]).
const LAST_ASKED: &str = "You last asked: ";
const LAST_SAID: &str = "I last said: ";
const FIRST_ASKED: &str = "The first question of yours I still have from this conversation: ";
const FIRST_SAID: &str = "The first answer of mine I still have from this conversation: ";

/// How this module's answers start.
const RECALL_OPENINGS: &[&str] = &[
    "Earlier in this conversation (",
    "In conversation `",
    "A little earlier in this conversation ",
    LAST_ASKED,
    LAST_SAID,
    FIRST_ASKED,
    FIRST_SAID,
];

/// Where and when a recalled message was said.
fn place(turn: &RecalledTurn) -> String {
    let day = turn.at.created_at.get(..10).unwrap_or(&turn.at.created_at);
    if turn.same_session {
        format!("Earlier in this conversation ({day})")
    } else {
        format!("In conversation `{}` on {day}", turn.at.session)
    }
}

/// One message as a sentence: where and when, who, and what was said.
fn quote(said: &Said<'_>, place: String) -> String {
    let who = match said.role {
        Role::User => "you asked",
        Role::Assistant => "I said",
        Role::System => "the instructions said",
    };
    let text = without_markers(said.content.trim());
    format!(
        "{place} {who}: \"{}\"",
        truncate_chars(&text, MAX_QUOTE_CHARS)
    )
}

/// A question about the conversation with no topic ("what did I ask?", "what was your
/// first answer?"): the first or the last message of the kind asked for in the recent
/// conversation, questions about the conversation and their answers aside. "We" counts
/// as the user's questions. The first is only the first the window still holds, and the
/// answer says so.
fn by_place(request: &AnswerRequest, asked: AskedOf, first: bool) -> Answer {
    let wanted = |role: Role| match asked {
        AskedOf::Either => role == Role::User,
        asked => asked.wants(role),
    };
    let mut candidates = request
        .history
        .iter()
        .map(|t| Said {
            role: t.role,
            content: &t.content,
            recalled: None,
        })
        .filter(|said| wanted(said.role) && !is_about_recall(said));
    let found = if first {
        candidates.next()
    } else {
        candidates.next_back()
    };
    let Some(said) = found else {
        return plain(NOTHING_RECALLED_REPLY);
    };
    let text = truncate_chars(&without_markers(said.content.trim()), MAX_QUOTE_CHARS);
    let opening = match (first, said.role) {
        (false, Role::User) => LAST_ASKED,
        (false, _) => LAST_SAID,
        (true, Role::User) => FIRST_ASKED,
        (true, _) => FIRST_SAID,
    };
    plain(&format!("{opening}\"{text}\""))
}

/// `text` without its citation markers (`[1]`, `[2][3]`): they numbered the sources of
/// the answer they were in, not of this one.
fn without_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after.as_bytes().get(digits) == Some(&b']') {
            out.push_str(rest[..open].trim_end_matches(' '));
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
