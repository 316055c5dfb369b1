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
mod tests {
    use super::*;
    use crate::retrieve::HistoryTurn;
    use ragchat_core::ConversationRef;

    fn recalled(session: &str, role: Role, content: &str, score: f64) -> RecalledTurn {
        RecalledTurn {
            at: ConversationRef {
                session: session.into(),
                message_id: format!("{session}-{score}"),
                seq: 3,
                role,
                created_at: "2026-11-20T09:30:00Z".into(),
            },
            content: content.into(),
            score,
            same_session: session == "here",
        }
    }

    /// A question of the user's in this conversation, written on `day`.
    fn written_on(day: &str, content: &str, score: f64) -> RecalledTurn {
        let mut turn = recalled("here", Role::User, content, score);
        turn.at.created_at = format!("{day}T09:30:00Z");
        turn
    }

    fn ask(question: &str, recalled_turns: Vec<RecalledTurn>) -> Answer {
        let request = AnswerRequest {
            question: question.into(),
            recalled: recalled_turns,
            ..AnswerRequest::default()
        };
        let asked = crate::recall::asks_about_conversation(question).expect("a recall question");
        answer(question, asked, &request, &|_| 1.0)
    }

    #[test]
    fn the_users_own_question_is_quoted_and_cited() {
        let answer = ask(
            "What did I ask about learning rates earlier?",
            vec![
                recalled(
                    "here",
                    Role::Assistant,
                    "A learning rate too high diverges [1].",
                    3.0,
                ),
                recalled(
                    "here",
                    Role::User,
                    "Which learning rate should I start with?",
                    2.0,
                ),
                recalled("trip", Role::User, "Is the train to Sintra fast?", 9.0),
            ],
        );
        assert_eq!(
            answer.text,
            "Earlier in this conversation (2026-11-20) you asked: \"Which learning rate should I \
             start with?\" [1]"
        );
        assert_eq!(answer.sources.len(), 1);
        let cited = answer.sources[0]
            .conversation
            .as_ref()
            .expect("a conversation");
        assert_eq!(cited.role, Role::User);
    }

    #[test]
    fn the_assistants_words_are_quoted_without_their_old_markers() {
        let answer = ask(
            "What was the command you gave me for the backup?",
            vec![recalled(
                "ops",
                Role::Assistant,
                "Run `pg_dump -Fc app > app.dump` for the backup [1][2].",
                1.0,
            )],
        );
        assert_eq!(
            answer.text,
            "In conversation `ops` on 2026-11-20 I said: \"Run `pg_dump -Fc app > app.dump` for \
             the backup.\" [1]"
        );
    }

    #[test]
    fn nothing_on_the_topic_is_said_plainly() {
        let answer = ask(
            "What did I ask about gradient clipping?",
            vec![recalled("here", Role::User, "What is a gradient?", 1.0)],
        );
        assert_eq!(answer.text, NOTHING_RECALLED_REPLY);
        assert!(answer.sources.is_empty());
        let none = ask("What did I ask about gradient clipping?", vec![]);
        assert_eq!(none.text, NOTHING_RECALLED_REPLY);
    }

    #[test]
    fn a_recent_message_is_quoted_without_a_citation() {
        let request = AnswerRequest {
            question: "What did I ask about dropout?".into(),
            history: vec![
                HistoryTurn::user("What is dropout?"),
                HistoryTurn::assistant("Dropout drops units [1]."),
            ],
            ..AnswerRequest::default()
        };
        let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
        assert_eq!(
            answer.text,
            "A little earlier in this conversation you asked: \"What is dropout?\""
        );
        assert!(answer.sources.is_empty());
    }

    #[test]
    fn without_a_topic_the_last_question_is_quoted() {
        let request = AnswerRequest {
            question: "What did I ask last time?".into(),
            history: vec![
                HistoryTurn::user("What is dropout?"),
                HistoryTurn::assistant("Dropout drops units [1]."),
            ],
            ..AnswerRequest::default()
        };
        let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
        assert_eq!(answer.text, "You last asked: \"What is dropout?\"");
    }

    /// A conversation of two questions and their answers, and a recall question after them.
    fn positional(question: &str) -> Answer {
        let request = AnswerRequest {
            question: question.into(),
            history: vec![
                HistoryTurn::user("What is dropout?"),
                HistoryTurn::assistant("Dropout drops units [1]."),
                HistoryTurn::user("What did I ask about dropout?"),
                HistoryTurn::assistant(
                    "A little earlier in this conversation you asked: \"What is dropout?\"",
                ),
                HistoryTurn::user("And batch norm?"),
                HistoryTurn::assistant("Batch norm rescales activations [1]."),
            ],
            ..AnswerRequest::default()
        };
        let asked = crate::recall::asks_about_conversation(question).expect("a recall question");
        answer(question, asked, &request, &|_| 1.0)
    }

    #[test]
    fn the_first_or_last_message_is_quoted_when_the_question_names_a_position() {
        for question in ["What was my first question?", "What did I ask first?"] {
            assert_eq!(
                positional(question).text,
                "The first question of yours I still have from this conversation: \"What is \
                 dropout?\"",
                "{question}"
            );
        }
        assert_eq!(
            positional("What was my last question?").text,
            "You last asked: \"And batch norm?\""
        );
        assert_eq!(
            positional("What was your last answer?").text,
            "I last said: \"Batch norm rescales activations.\""
        );
        assert_eq!(
            positional("What was your first answer?").text,
            "The first answer of mine I still have from this conversation: \"Dropout drops \
             units.\""
        );
    }

    #[test]
    fn the_first_question_on_a_topic_is_the_oldest_one() {
        let request = |question: &str| AnswerRequest {
            question: question.into(),
            history: vec![
                HistoryTurn::user("What is dropout?"),
                HistoryTurn::assistant("Dropout drops units [1]."),
                HistoryTurn::user("How much dropout should I use?"),
                HistoryTurn::assistant("Start with a dropout rate of 0.5 [1]."),
            ],
            ..AnswerRequest::default()
        };
        let first = request("What was my first question about dropout?");
        assert_eq!(
            answer(&first.question, AskedOf::User, &first, &|_| 1.0).text,
            "A little earlier in this conversation you asked: \"What is dropout?\""
        );
        // Without a place, both are quoted, the most recent first.
        let any = request("What did I ask about dropout?");
        assert_eq!(
            answer(&any.question, AskedOf::User, &any, &|_| 1.0).text,
            "A little earlier in this conversation you asked: \"How much dropout should I \
             use?\" A little earlier in this conversation you asked: \"What is dropout?\""
        );
    }

    #[test]
    fn the_first_recalled_question_on_a_topic_goes_by_when_it_was_written() {
        // The search ranks the newer message first; the window holds a newer one still.
        let request = AnswerRequest {
            question: "What was my first question about dropout?".into(),
            history: vec![HistoryTurn::user("Does dropout slow training?")],
            recalled: vec![
                written_on("2026-11-21", "How much dropout should I use?", 5.0),
                written_on("2026-11-20", "What is dropout?", 2.0),
            ],
            ..AnswerRequest::default()
        };
        let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
        assert_eq!(
            answer.text,
            "Earlier in this conversation (2026-11-20) you asked: \"What is dropout?\" [1]"
        );
        assert_eq!(answer.sources.len(), 1);
    }

    #[test]
    fn the_last_question_on_a_topic_is_the_newest_one_alone() {
        // The search ranks the older message first.
        let request = AnswerRequest {
            question: "What was my last question about dropout?".into(),
            recalled: vec![
                written_on("2026-11-20", "What is dropout?", 5.0),
                written_on("2026-11-21", "How much dropout should I use?", 2.0),
            ],
            ..AnswerRequest::default()
        };
        let answer = answer(&request.question, AskedOf::User, &request, &|_| 1.0);
        assert_eq!(
            answer.text,
            "Earlier in this conversation (2026-11-21) you asked: \"How much dropout should I \
             use?\" [1]"
        );
        // "Last week" is when, not which message: both are quoted, the search's best first.
        let when = AnswerRequest {
            question: "What did I ask about dropout last week?".into(),
            ..request.clone()
        };
        let answer = super::answer(&when.question, AskedOf::User, &when, &|_| 1.0);
        assert_eq!(answer.sources.len(), 2, "{}", answer.text);
    }

    #[test]
    fn the_last_question_skips_questions_about_the_conversation() {
        let request = AnswerRequest {
            question: "What did we talk about earlier?".into(),
            history: vec![
                HistoryTurn::user("What is dropout?"),
                HistoryTurn::assistant("Dropout drops units [1]."),
                HistoryTurn::user("What was my first question?"),
                HistoryTurn::assistant("The first question of yours I still have from this conversation: \"What is dropout?\""),
            ],
            ..AnswerRequest::default()
        };
        let answer = answer(&request.question, AskedOf::Either, &request, &|_| 1.0);
        assert_eq!(answer.text, "You last asked: \"What is dropout?\"");
    }

    #[test]
    fn earlier_recall_questions_and_their_answers_are_not_quoted() {
        let answer = ask(
            "What did I ask about dropout?",
            vec![
                recalled("s2", Role::User, "What did I ask about dropout?", 9.0),
                recalled(
                    "s2",
                    Role::Assistant,
                    "In conversation `trip` on 2026-11-20 you asked: \"What is dropout?\" [1]",
                    8.0,
                ),
                recalled("trip", Role::User, "What is dropout?", 1.0),
            ],
        );
        assert_eq!(
            answer.text,
            "In conversation `trip` on 2026-11-20 you asked: \"What is dropout?\" [1]"
        );
    }

    #[test]
    fn markers_are_removed_and_brackets_kept() {
        assert_eq!(without_markers("a [1] b [2][3]."), "a b.");
        assert_eq!(without_markers("x[0] [y] [12"), "x [y] [12");
    }
}
