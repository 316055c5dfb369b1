//! What the extractive answerer says when it is not quoting: declining, recapping a
//! conversation, and answering small talk.

use super::suggest::lower_common_words;
use crate::acts::ConversationAct;
use crate::replies::NOTHING_FOUND_REPLY;

/// Declining, naming what the documents cover nearby when there is such a topic.
pub(super) fn decline(near_topic: Option<&str>) -> String {
    match near_topic {
        Some(topic) => format!("{NOTHING_FOUND_REPLY} They do cover {topic}; ask about that?"),
        None => NOTHING_FOUND_REPLY.to_owned(),
    }
}

/// A document title as a phrase inside a sentence: "What Is Machine Learning?" becomes "what
/// machine learning is", "Overfitting and Regularization" becomes "overfitting and
/// regularization"; capitalised words the document also writes in lowercase are lowered,
/// names and acronyms ("Bayes", "CNN") are kept.
pub(crate) fn topic_phrase(title: &str, context: &str) -> String {
    let title = title.trim().trim_end_matches(['?', '.', '!', ':']).trim();
    let mut parts = title.splitn(3, ' ');
    let (first, second, rest) = (parts.next(), parts.next(), parts.next());
    let reordered = match (first, second, rest) {
        (Some(what), Some(verb), Some(rest))
            if what.eq_ignore_ascii_case("what")
                && (verb.eq_ignore_ascii_case("is") || verb.eq_ignore_ascii_case("are")) =>
        {
            format!("{what} {rest} {}", verb.to_lowercase())
        }
        _ => title.to_owned(),
    };
    lower_common_words(&reordered, context)
}

/// The opening of a "Continue" answer: one sentence naming the topic and the last question.
pub(super) fn recap(topic: &str, asked: &str) -> String {
    let asked = asked.trim();
    if asked.is_empty() {
        return format!("We were talking about {topic}. Here is more on it. ");
    }
    format!("We were talking about {topic} (you asked \"{asked}\"). Here is more on it. ")
}

/// The reply to "Continue" when the documents have nothing more on the topic.
pub(super) fn recap_exhausted(topic: &str) -> String {
    format!("We were talking about {topic}, and I have told you everything the documents say about it. Ask me about something else?")
}

/// What ragchat says to a greeting, thanks, goodbye or "who are you?".
pub(super) fn small_talk(act: ConversationAct, resumed: bool, examples: &[String]) -> String {
    let try_asking = try_asking(examples);
    match act {
        ConversationAct::Greeting if resumed => {
            "Hello again! Say \"continue\" to pick up where we left off, or ask me something new about the documents.".to_owned()
        }
        ConversationAct::Greeting => {
            format!("Hello! I answer questions from the documents loaded here, with sources.{try_asking}")
        }
        ConversationAct::Thanks => {
            "You're welcome! Ask me anything else about the documents.".to_owned()
        }
        ConversationAct::Goodbye => {
            "Goodbye! This conversation is kept, so you can pick it up again later.".to_owned()
        }
        ConversationAct::Acknowledgement => {
            "Anything else you'd like to know? Ask me about the documents, or say \"tell me more\".".to_owned()
        }
        ConversationAct::Capabilities => format!(
            "I'm ragchat. I answer questions from the documents loaded here by quoting the \
             passages that answer them, with their sources, and I say so when the documents \
             don't cover something. I also remember our conversation, so you can ask \
             follow-ups, or come back later and pick up where we left off.{try_asking}"
        ),
    }
}

/// " You could ask, for example, "A", "B" or "C"." for the examples there are.
fn try_asking(examples: &[String]) -> String {
    let quoted: Vec<String> = examples.iter().map(|e| format!("\"{e}\"")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!(" You could ask, for example, {one}"),
        [init @ .., last] => format!(" You could ask, for example, {} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_read_as_phrases() {
        let text = "machine learning is used; overfitting and regularization help; naive models \
                    use Bayes' theorem";
        assert_eq!(
            topic_phrase("What Is Machine Learning?", text),
            "what machine learning is"
        );
        assert_eq!(
            topic_phrase("Overfitting and Regularization", text),
            "overfitting and regularization"
        );
        assert_eq!(topic_phrase("Naive Bayes", text), "naive Bayes");
        assert_eq!(
            topic_phrase("How Machine Learning Models Learn", "models learn"),
            "how machine learning models learn"
        );
        assert_eq!(
            topic_phrase("Retrieval-Augmented Generation (RAG)", "RAG is"),
            "retrieval-augmented generation (RAG)"
        );
    }

    #[test]
    fn recap_is_one_sentence_naming_topic_and_question() {
        assert_eq!(
            recap("how models learn", "How does it learn?"),
            "We were talking about how models learn (you asked \"How does it learn?\"). Here is more on it. "
        );
    }

    #[test]
    fn small_talk_names_examples() {
        let examples = vec![
            "What is overfitting?".to_owned(),
            "What is a decision tree?".to_owned(),
            "What is dropout?".to_owned(),
        ];
        let reply = small_talk(ConversationAct::Capabilities, false, &examples);
        assert!(
            reply.ends_with(
                "\"What is overfitting?\", \"What is a decision tree?\" or \"What is dropout?\""
            ),
            "{reply}"
        );
        assert!(small_talk(ConversationAct::Thanks, true, &examples).starts_with("You're welcome"));
    }
}
