//! Turning recent history into LLM-ready context within a token budget.
//!
//! Token counts are estimated (about four characters per token, plus a few tokens of
//! per-message framing), which is close enough for budgeting and needs no tokenizer
//! tables. Callers with an exact tokenizer can use [`select_recent_with`]. The estimate
//! and the windowing rule are `ragchat-core`'s, the same the LLM prompt uses.

pub use ragchat_core::tokens::{estimate_tokens, MESSAGE_OVERHEAD_TOKENS};

use crate::message::{Message, Role};

/// The most recent messages whose estimated tokens fit `budget`, oldest first.
///
/// Whole messages only: the first message (walking back from the newest) that does
/// not fit ends the window, so the window is always a contiguous tail.
pub fn select_recent<'a, I>(messages: I, budget: usize) -> Vec<&'a Message>
where
    I: DoubleEndedIterator<Item = &'a Message>,
{
    select_recent_with(messages, budget, |m| {
        estimate_tokens(&m.content) + MESSAGE_OVERHEAD_TOKENS
    })
}

/// Like [`select_recent`], with a caller-supplied token counter.
pub fn select_recent_with<'a, I>(
    messages: I,
    budget: usize,
    mut tokens: impl FnMut(&Message) -> usize,
) -> Vec<&'a Message>
where
    I: DoubleEndedIterator<Item = &'a Message>,
{
    ragchat_core::recent_window(messages, budget, |m| tokens(m))
}

/// Renders messages as a transcript: one `Role: text` block per message.
pub fn render(messages: &[&Message]) -> String {
    let mut out = String::new();
    for m in messages {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(match m.role {
            Role::User => "User: ",
            Role::Assistant => "Assistant: ",
            Role::System => "System: ",
        });
        out.push_str(&m.content);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_whole_messages_that_fit() {
        let msgs = [
            Message::user("a".repeat(40)),      // 10 + 4
            Message::assistant("b".repeat(40)), // 10 + 4
            Message::user("c".repeat(8)),       // 2 + 4
        ];
        let w = select_recent(msgs.iter(), 20);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].content, "b".repeat(40));
        assert_eq!(w[1].content, "c".repeat(8));
        assert!(select_recent(msgs.iter(), 5).is_empty());
        assert_eq!(select_recent(msgs.iter(), 1000).len(), 3);
        let text = render(&w);
        assert!(text.starts_with("Assistant: b"));
        assert!(text.ends_with("User: cccccccc"));
    }
}
