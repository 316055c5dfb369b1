//! Recall: earlier messages of the user's own conversations that a turn brings back into
//! its context, beside the documents' hits, and the questions that ask about them.
//!
//! Memory finds the messages (full-text search over the user's conversations); this
//! module says what to search for ([`recall_query`]: the question without the words that
//! only say "earlier" or "what did I ask") and whether a question asks about the
//! conversation itself rather than the documents ([`asks_about_conversation`]: "what did
//! I ask about learning rates?", "the command you gave me for the backup").

use ragchat_core::{ConversationRef, Role};

/// An earlier message recalled for a turn: where it is, what it says, how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct RecalledTurn {
    /// The conversation, the message and when it was written.
    pub at: ConversationRef,
    /// The message's text.
    pub content: String,
    /// Search relevance, higher is better (comparable within one turn only).
    pub score: f64,
    /// Whether it is an earlier message of the conversation of the turn.
    pub same_session: bool,
}

/// Whose words a question about the conversation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskedOf {
    /// "What did I ask about ...?": the user's own messages.
    User,
    /// "What did you say about ...?", "the command you gave me": the assistant's.
    Assistant,
    /// "Did we talk about ...?": either.
    Either,
}

impl AskedOf {
    /// Whether a message by `role` is what was asked for.
    pub fn wants(self, role: Role) -> bool {
        match self {
            AskedOf::User => role == Role::User,
            AskedOf::Assistant => role == Role::Assistant,
            AskedOf::Either => role != Role::System,
        }
    }
}

/// Verbs of saying: with "I", "you" or "we" and a past-tense cue, they point back at the
/// conversation.
#[rustfmt::skip]
const SAYING: &[&str] = &[
    "ask", "asked", "say", "said", "tell", "told", "mention", "mentioned", "discuss",
    "discussed", "talk", "talked", "speak", "spoke", "write", "wrote", "give", "gave",
    "suggest", "suggested", "recommend", "recommended", "answer", "answered", "reply",
    "replied", "show", "showed", "explain", "explained", "share", "shared", "send", "sent",
];

/// Words that place the question in the past of the conversation.
#[rustfmt::skip]
const PAST_CUES: &[&str] = &[
    "did", "have", "had", "earlier", "before", "previously", "ago", "last", "once",
];

/// Words that name a message by its place in the conversation: "my first question".
const FIRST_WORDS: &[&str] = &["first", "initial", "original", "earliest"];
const LAST_WORDS: &[&str] = &["last", "previous", "latest", "recent"];

/// Kinds of message that "my", "your" or "our" and a place name: "your last answer".
#[rustfmt::skip]
const MESSAGE_NOUNS: &[&str] = &[
    "question", "questions", "message", "messages", "answer", "answers", "reply", "replies",
];

/// Words a recall search leaves out: they say how the question refers back, not what
/// it is about.
#[rustfmt::skip]
const META_WORDS: &[&str] = &[
    "what", "which", "when", "where", "did", "do", "does", "have", "had", "has", "i", "you",
    "we", "me", "my", "us", "our", "your", "ever", "about", "regarding", "earlier", "before",
    "previously", "ago", "last", "once", "time", "times", "week", "weeks", "day", "days",
    "month", "yesterday", "today", "remind", "remember", "again", "conversation",
    "conversations", "chat", "chats", "the", "a", "an", "that", "this", "it", "for", "on", "of",
    "to", "was", "were", "is", "are", "there", "something", "anything", "thing", "things",
    "please", "can", "could", "would", "in", "with", "back", "then", "just", "so", "far",
    // What kind of message is meant, not what it is about: "the command you gave me".
    "command", "commands", "question", "questions", "answer", "answers", "advice", "tip",
    "tips", "example", "examples", "link", "links", "suggestion", "suggestions", "name", "word",
    "words",
    // A message's place in the conversation, and what kind of message: "my first question".
    "first", "initial", "original", "earliest", "previous", "latest", "recent", "most",
    "message", "messages", "reply", "replies",
];

/// The lowercased words of `text`, apostrophes kept inside words.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `question` asks about the conversation rather than the documents, and whose
/// words it wants: "what did I ask about X?" (the user's), "what did you say about X?",
/// "the command you gave me for X" (the assistant's), "did we talk about X?" (either).
///
/// A saying verb with "I", "you" or "we" counts when the question also places it in the
/// past ("did", "have", "earlier", "last week", a past tense such as "you told me"), or
/// says "remind me". "What do you recommend?" asks the documents. So does a message
/// named by its place: "my first question", "your most recent answer" ("my first model"
/// and "my question is" do not).
pub fn asks_about_conversation(question: &str) -> Option<AskedOf> {
    let words = words(question);
    let remind = words
        .windows(2)
        .any(|w| w[0] == "remind" && matches!(w[1].as_str(), "me" | "us"));
    let past = remind || words.iter().any(|w| PAST_CUES.contains(&w.as_str()));
    for (i, word) in words.iter().enumerate() {
        let owner = match word.as_str() {
            "my" => Some(AskedOf::User),
            "your" => Some(AskedOf::Assistant),
            "our" => Some(AskedOf::Either),
            _ => None,
        };
        if let Some(owner) = owner {
            let after: Vec<&str> = words[i + 1..].iter().take(3).map(String::as_str).collect();
            let placed = match after.as_slice() {
                ["most" | "very", place, noun] if names_a_message(place, noun) => true,
                [place, noun, ..] => names_a_message(place, noun),
                _ => false,
            };
            if placed {
                return Some(owner);
            }
            continue;
        }
        let subject = match word.as_str() {
            "i" => AskedOf::User,
            "you" => AskedOf::Assistant,
            "we" => AskedOf::Either,
            _ => continue,
        };
        // The verb follows within two words: "I asked", "did you ever tell", "we have talked".
        let verb = words[i + 1..]
            .iter()
            .take(3)
            .find(|w| SAYING.contains(&w.as_str()));
        let Some(verb) = verb else { continue };
        let past_tense = verb.ends_with("ed")
            || matches!(
                verb.as_str(),
                "said" | "told" | "spoke" | "wrote" | "gave" | "sent"
            );
        if past || past_tense {
            return Some(subject);
        }
    }
    None
}

/// A message of the conversation named by its place: "my first question", "your last
/// answer".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// "first", "initial", "original", "earliest".
    First,
    /// "last", "previous", "latest", "most recent", before a kind of message: "my last
    /// question" (not "last week").
    Last,
}

/// The place a question about the conversation names, if it names one: "what was my
/// first question?", "what did I ask first?", "my last question about dropout".
pub(crate) fn asked_place(question: &str) -> Option<Place> {
    let words = words(question);
    if words.iter().any(|w| FIRST_WORDS.contains(&w.as_str())) {
        return Some(Place::First);
    }
    words
        .windows(2)
        .any(|w| LAST_WORDS.contains(&w[0].as_str()) && names_a_message(&w[0], &w[1]))
        .then_some(Place::Last)
}

/// Whether `place` then `noun` name a message by its place: "first question", "last
/// answer", "previous message".
fn names_a_message(place: &str, noun: &str) -> bool {
    (FIRST_WORDS.contains(&place) || LAST_WORDS.contains(&place)) && MESSAGE_NOUNS.contains(&noun)
}

/// What to search the user's conversations for: the question's words without those that
/// only refer back ("what did I ask about", "earlier", "last week"). Empty when nothing
/// else is left ("what did I ask earlier?").
pub fn recall_query(question: &str) -> String {
    words(question)
        .into_iter()
        .filter(|w| !META_WORDS.contains(&w.as_str()) && !SAYING.contains(&w.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_about_the_conversation_are_recognised_with_whose_words_they_want() {
        let cases = [
            (
                "What did I ask about learning rates earlier?",
                Some(AskedOf::User),
            ),
            ("what did i say about the trip", Some(AskedOf::User)),
            ("Remind me what I asked about Sintra", Some(AskedOf::User)),
            (
                "What was the command you gave me for the backup?",
                Some(AskedOf::Assistant),
            ),
            (
                "What did you tell me about dropout last week?",
                Some(AskedOf::Assistant),
            ),
            (
                "Did we talk about regularization before?",
                Some(AskedOf::Either),
            ),
            ("Have we discussed gradient descent?", Some(AskedOf::Either)),
            ("What do you recommend for regularization?", None),
            ("What is overfitting?", None),
            ("How do I prevent it?", None),
            ("Why did the model overfit?", None),
            ("What did Turing say about machines?", None),
            ("What was my first question?", Some(AskedOf::User)),
            ("What was your last answer?", Some(AskedOf::Assistant)),
            (
                "What was your most recent answer?",
                Some(AskedOf::Assistant),
            ),
            ("Repeat my previous message", Some(AskedOf::User)),
            ("What is the first step of a RAG pipeline?", None),
            ("My question is about dropout", None),
            ("Is my first model overfitting?", None),
        ];
        for (question, expected) in cases {
            assert_eq!(asks_about_conversation(question), expected, "{question}");
        }
    }

    #[test]
    fn a_place_is_named_by_first_words_or_by_last_words_before_a_kind_of_message() {
        let cases = [
            ("What was my first question?", Some(Place::First)),
            ("What did I ask first?", Some(Place::First)),
            (
                "What was my last question about dropout?",
                Some(Place::Last),
            ),
            ("What was your most recent answer?", Some(Place::Last)),
            ("Repeat my previous message", Some(Place::Last)),
            ("What did you tell me about dropout last week?", None),
            ("What did I ask last?", None),
            ("What did I ask about dropout?", None),
        ];
        for (question, expected) in cases {
            assert_eq!(asked_place(question), expected, "{question}");
        }
    }

    #[test]
    fn the_recall_query_keeps_what_the_question_is_about() {
        assert_eq!(
            recall_query("What did I ask about learning rates earlier?"),
            "learning rates"
        );
        assert_eq!(
            recall_query("What was the command you gave me for the backup?"),
            "backup"
        );
        assert_eq!(recall_query("what did I ask last week?"), "");
        assert_eq!(recall_query("What did I ask first?"), "");
        assert_eq!(recall_query("What was my first question?"), "");
        assert_eq!(
            recall_query("How do I prevent overfitting?"),
            "how prevent overfitting"
        );
    }
}
