//! What a resumed conversation is greeted with: "Welcome back! Last time you asked ...",
//! naming the last questions (small talk is not a question). The terminal chat prints it,
//! the web page shows it.

use ragchat_memory::{Message, Role};

/// "Welcome back! Last time you asked ..." from the most recent user messages that
/// asked something (greetings, thanks and other small talk are not questions).
pub fn welcome_text<'a>(messages: impl DoubleEndedIterator<Item = &'a Message>) -> Option<String> {
    let questions: Vec<&str> = messages
        .rev()
        .filter(|m| m.role == Role::User && ragchat_rag::is_topic_message(&m.content))
        .take(3)
        .map(|m| m.content.trim())
        .collect();
    if questions.is_empty() {
        return None;
    }
    let quoted: Vec<String> = questions
        .iter()
        .rev()
        .map(|q| format!("\"{}\"", shorten(q, 80)))
        .collect();
    let list = match quoted.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => return None,
    };
    Some(format!("Welcome back! Last time you asked {list}."))
}

fn shorten(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max_chars {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcome_names_the_last_questions() {
        let msgs = [
            Message::user("What is ML?"),
            Message::assistant("Machine learning is ..."),
            Message::user("How does it learn?"),
            Message::assistant("By ..."),
        ];
        let w = welcome_text(msgs.iter()).unwrap();
        assert_eq!(
            w,
            "Welcome back! Last time you asked \"What is ML?\" and \"How does it learn?\"."
        );
        assert!(welcome_text(std::iter::empty()).is_none());
    }

    #[test]
    fn welcome_leaves_out_small_talk() {
        let msgs = [
            Message::user("Hello!"),
            Message::assistant("Hello! ..."),
            Message::user("What is ML?"),
            Message::assistant("Machine learning is ..."),
            Message::user("Thanks!"),
            Message::assistant("You're welcome! ..."),
        ];
        assert_eq!(
            welcome_text(msgs.iter()).as_deref(),
            Some("Welcome back! Last time you asked \"What is ML?\".")
        );
        let only_small_talk = [Message::user("Hi"), Message::assistant("Hello!")];
        assert!(welcome_text(only_small_talk.iter()).is_none());
    }
}
