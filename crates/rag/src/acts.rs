//! Conversation acts: messages that are not questions about the documents (greetings, thanks,
//! goodbyes, "who are you?"), recognised so they are answered as such and never taken for a
//! topic.
//!
//! Recognition is deliberately narrow: a message is an act only when, after the act's own words
//! and a few fillers ("ok", "so", "ragchat") are removed, nothing is left. "Hi, what is
//! overfitting?" is a question, not a greeting.

use serde::{Deserialize, Serialize};

use crate::text::words;

/// What a message that is not a question about the documents does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationAct {
    /// "Hi", "Good morning", "How are you?".
    Greeting,
    /// "Thanks", "Thank you, that helps".
    Thanks,
    /// "Bye", "See you tomorrow", "That's all".
    Goodbye,
    /// "Ok", "Got it", "Interesting": acknowledges the last answer.
    Acknowledgement,
    /// "Who are you?", "What can you do?", "What can I ask?", "Help".
    Capabilities,
}

/// Whole-message phrasings of each act, as lowercase words separated by single spaces.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "howdy",
    "greetings",
    "yo",
    "good morning",
    "good afternoon",
    "good evening",
    "morning",
    "how are you",
    "how are you doing",
    "how's it going",
    "hows it going",
    "nice to meet you",
];
const THANKS: &[&str] = &[
    "thanks",
    "thank you",
    "thx",
    "ty",
    "cheers",
    "thanks a lot",
    "thank you very much",
    "thanks so much",
    "many thanks",
    "much appreciated",
    "that helps",
    "that helped",
    "that's helpful",
    "that was helpful",
    "very helpful",
    "helpful",
];
const GOODBYES: &[&str] = &[
    "bye",
    "goodbye",
    "bye bye",
    "see you",
    "see ya",
    "see you later",
    "see you tomorrow",
    "see you soon",
    "cya",
    "good night",
    "that's all",
    "that is all",
    "that's it",
    "i'm done",
    "i am done",
    "talk to you later",
    "take care",
];
const ACKNOWLEDGEMENTS: &[&str] = &[
    "ok",
    "okay",
    "k",
    "cool",
    "nice",
    "great",
    "got it",
    "i see",
    "interesting",
    "makes sense",
    "that makes sense",
    "understood",
    "alright",
    "all right",
    "sure",
    "awesome",
    "perfect",
    "wow",
];
const CAPABILITIES: &[&str] = &[
    "who are you",
    "what are you",
    "what is this",
    "what's this",
    "what is ragchat",
    "what's ragchat",
    "what can you do",
    "what do you do",
    "what can you help with",
    "what can you help me with",
    "how can you help",
    "how can you help me",
    "what can i ask",
    "what can i ask you",
    "what should i ask",
    "what do you know",
    "what do you know about",
    "what are you able to do",
    "what topics do you cover",
    "what topics can you answer",
    "what documents do you have",
    "which documents do you have",
    "what is in the documents",
    "what's in the documents",
    "how do you work",
    "help",
    "help me",
];
/// Words that may surround an act without changing it: "ok thanks", "hi ragchat", "so, bye".
const FILLERS: &[&str] = &[
    "ok", "okay", "oh", "so", "well", "and", "then", "please", "ragchat", "bot", "there", "again",
    "all", "everyone", "dear", "friend", "mate", "buddy",
];

/// The act `message` performs, or `None` for a question or anything with a topic of its own.
///
/// When a message combines acts ("Great, thanks! Bye"), the last one wins: it is what the
/// reply should respond to.
pub fn conversation_act(message: &str) -> Option<ConversationAct> {
    let words: Vec<String> = words(&message.replace('’', "'")).collect();
    if words.is_empty() || words.len() > 12 {
        return None;
    }
    let mut found = None;
    let mut at = 0;
    'words: while at < words.len() {
        // Longest phrase first, so "thank you very much" is not "thank you" + "very much".
        for len in (1..=(words.len() - at).min(6)).rev() {
            let phrase = words[at..at + len].join(" ");
            if let Some(act) = act_of(&phrase) {
                found = Some(act);
                at += len;
                continue 'words;
            }
        }
        if !FILLERS.contains(&words[at].as_str()) {
            return None;
        }
        at += 1;
    }
    found
}

fn act_of(phrase: &str) -> Option<ConversationAct> {
    let lists = [
        (CAPABILITIES, ConversationAct::Capabilities),
        (GREETINGS, ConversationAct::Greeting),
        (THANKS, ConversationAct::Thanks),
        (GOODBYES, ConversationAct::Goodbye),
        (ACKNOWLEDGEMENTS, ConversationAct::Acknowledgement),
    ];
    lists
        .iter()
        .find(|(list, _)| list.contains(&phrase))
        .map(|(_, act)| *act)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieve::is_topic_message;
    use ConversationAct::*;

    #[test]
    fn recognises_acts_in_their_usual_phrasings() {
        let cases = [
            ("Hello!", Greeting),
            ("hi there", Greeting),
            ("Good morning, ragchat", Greeting),
            ("How are you?", Greeting),
            ("Thanks!", Thanks),
            ("Thank you very much.", Thanks),
            ("ok thanks", Thanks),
            ("That helps, thanks", Thanks),
            ("Bye", Goodbye),
            ("See you tomorrow!", Goodbye),
            ("Great, thanks! Bye", Goodbye),
            ("That’s all", Goodbye),
            ("Got it", Acknowledgement),
            ("ok", Acknowledgement),
            ("Who are you?", Capabilities),
            ("What can you do?", Capabilities),
            ("So what can I ask you?", Capabilities),
            ("help", Capabilities),
        ];
        for (message, act) in cases {
            assert_eq!(conversation_act(message), Some(act), "{message:?}");
            assert!(!is_topic_message(message), "{message:?}");
        }
    }

    #[test]
    fn questions_with_a_topic_are_not_acts() {
        for message in [
            "Hi, what is overfitting?",
            "Thanks, and what about dropout?",
            "What can you tell me about decision trees?",
            "How do I help my model generalise?",
            "What is this thing called backpropagation?",
            "Tell me more",
            "Continue",
            "Why?",
            "",
            "Good model or bad model?",
        ] {
            assert_eq!(conversation_act(message), None, "{message:?}");
        }
        assert!(is_topic_message("What is overfitting?"));
        assert!(!is_topic_message("Why?"));
        assert!(!is_topic_message("Tell me more"));
    }
}
