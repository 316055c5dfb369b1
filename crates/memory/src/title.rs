//! Conversation titles: the one rule that names a conversation by its first question,
//! and what a title given by a person may be.
//!
//! Every store sets a session's automatic title in the append that brings its first
//! user message (so appends replayed from the journal title it the same way), and never
//! changes it afterwards. A title given by a person ([`SessionStore::set_title`]) takes
//! its place until it is cleared. Sessions stored before titles existed have no
//! automatic title: their first question is read back by whoever lists them.
//!
//! [`SessionStore::set_title`]: crate::store::SessionStore::set_title

use crate::error::{MemoryError, Result};
use crate::message::{Message, Role};

/// Longest automatic title, in characters (longer first questions are cut, with `…`).
pub const MAX_TITLE_CHARS: usize = 80;

/// Longest title a person may give, in characters (after trimming).
pub const MAX_GIVEN_TITLE_CHARS: usize = 200;

/// The automatic title of a conversation: its first user message with text, whitespace
/// collapsed to single spaces, cut to [`MAX_TITLE_CHARS`] on a character boundary with
/// `…`; `None` when no user message has text.
pub fn title_of<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Option<String> {
    let first = messages
        .into_iter()
        .filter(|m| m.role == Role::User)
        .find(|m| !m.content.trim().is_empty())?;
    // The message with its whitespace collapsed, read only as far as the title needs:
    // a long first message costs no more than a short one (Redis and PostgreSQL compute
    // this on every append).
    let collapsed = first
        .content
        .split_whitespace()
        .flat_map(|word| std::iter::once(' ').chain(word.chars()))
        .skip(1);
    let line: String = collapsed.take(MAX_TITLE_CHARS + 1).collect();
    if line.chars().count() <= MAX_TITLE_CHARS {
        return Some(line);
    }
    let mut cut: String = line.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

/// A title given by a person, trimmed: 1 to [`MAX_GIVEN_TITLE_CHARS`] characters, no
/// control characters (a title is one line).
///
/// # Errors
/// `InvalidInput` when it is empty, too long, or holds a control character.
pub fn validate_title(title: &str) -> Result<&str> {
    let title = title.trim();
    let chars = title.chars().count();
    if chars == 0 {
        return Err(MemoryError::invalid("a title cannot be empty"));
    }
    if chars > MAX_GIVEN_TITLE_CHARS {
        return Err(MemoryError::invalid(format!(
            "a title is at most {MAX_GIVEN_TITLE_CHARS} characters (this one has {chars})"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(MemoryError::invalid(
            "a title cannot hold control characters (line breaks, tabs, ...)",
        ));
    }
    Ok(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_question_on_one_line() {
        let messages = [
            Message::new(Role::System, "You are helpful."),
            Message::user("   \n "),
            Message::user("What is\n  machine   learning?"),
            Message::assistant("It is ..."),
            Message::user("How does it learn?"),
        ];
        assert_eq!(
            title_of(messages.iter()).as_deref(),
            Some("What is machine learning?")
        );
        assert_eq!(title_of([Message::assistant("Hi")].iter()), None);
    }

    #[test]
    fn reading_only_the_start_gives_what_the_whole_message_would() {
        // The rule written plainly: collapse the whole message, then cut.
        let whole = |text: &str| {
            let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if line.chars().count() <= MAX_TITLE_CHARS {
                return line;
            }
            let mut cut: String = line.chars().take(MAX_TITLE_CHARS - 1).collect();
            cut.truncate(cut.trim_end().len());
            cut + "…"
        };
        for n in [1, 78, 79, 80, 81, 82, 200] {
            for text in [
                "x".repeat(n),
                format!("{} y", "x".repeat(n)),
                format!("  {}\n\t z  ", "ab ".repeat(n)),
                format!("{}{}", "x".repeat(n), " ".repeat(n)),
            ] {
                let title = title_of([Message::user(text.clone())].iter()).unwrap();
                assert_eq!(title, whole(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn long_questions_are_cut_at_a_character_boundary() {
        let long = format!("{} ends here", "é".repeat(100));
        let title = title_of([Message::user(long)].iter()).unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert!(title.ends_with('…'), "{title}");
        let spaced = format!("{} tail", "word ".repeat(20));
        let title = title_of([Message::user(spaced)].iter()).unwrap();
        assert!(
            title.ends_with("word…"),
            "no space before the ellipsis: {title}"
        );
    }

    #[test]
    fn given_titles_are_trimmed_single_lines_of_bounded_length() {
        assert_eq!(validate_title("  Trip plans  ").unwrap(), "Trip plans");
        assert_eq!(
            validate_title(&"é".repeat(200)).unwrap().chars().count(),
            200
        );
        for bad in ["", "   ", "two\nlines", "tab\there", "bell\u{7}"] {
            assert!(
                matches!(validate_title(bad), Err(MemoryError::InvalidInput(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            validate_title(&"x".repeat(201)),
            Err(MemoryError::InvalidInput(_))
        ));
    }
}
