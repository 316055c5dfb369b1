//! Stored conversation -> what retrieval and the answerers take: the one conversion
//! from memory messages to [`HistoryTurn`]s, the one history window (which recent
//! messages fit the prompt's token budget), and the one way sources and prompt sizes
//! are counted.
//!
//! Token counts are the memory crate's estimate (about four characters per token plus
//! [`MESSAGE_OVERHEAD_TOKENS`] of framing per message); the window is the newest whole
//! messages that fit, oldest first. Every turn, ragchat's own or a supplied conversation,
//! goes through [`HistoryWindow::recent`], so they see the same context for the same
//! conversation.

use ragchat_memory::context::{estimate_tokens, select_recent, MESSAGE_OVERHEAD_TOKENS};
use ragchat_memory::Message;
use ragchat_rag::{HistoryTurn, Hit};

/// The recent part of a conversation that fits a token budget, ready for retrieval and
/// the answerer.
#[derive(Clone, Debug, Default)]
pub struct HistoryWindow {
    /// The window's messages as plain turns, oldest first.
    pub turns: Vec<HistoryTurn>,
    /// Estimated tokens of the window, framing included.
    pub tokens: usize,
}

impl HistoryWindow {
    /// The newest whole messages of `messages` (oldest first) whose estimated tokens fit
    /// `budget`.
    pub fn recent<'a>(
        messages: impl DoubleEndedIterator<Item = &'a Message>,
        budget: usize,
    ) -> HistoryWindow {
        HistoryWindow::of(select_recent(messages, budget))
    }

    /// The window of messages already chosen (oldest first).
    pub fn of(window: Vec<&Message>) -> HistoryWindow {
        let tokens = window.iter().map(|m| message_tokens(&m.content)).sum();
        HistoryWindow {
            turns: history_turns(window),
            tokens,
        }
    }
}

/// Estimated tokens one message of `text` takes in a prompt, framing included.
pub fn message_tokens(text: &str) -> usize {
    estimate_tokens(text) + MESSAGE_OVERHEAD_TOKENS
}

/// Estimated tokens of a whole prompt: the history window, the retrieved passages and
/// the question, each framed as a message.
pub fn prompt_tokens(window: &HistoryWindow, hits: &[Hit], question: &str) -> usize {
    let passages: usize = hits.iter().map(|h| message_tokens(&h.text)).sum();
    window.tokens + passages + message_tokens(question)
}

/// Converts stored messages to the retrieval crate's plain history turns.
pub fn history_turns<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Vec<HistoryTurn> {
    messages
        .into_iter()
        .map(|m| HistoryTurn {
            role: m.role,
            content: m.content.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_newest_messages_that_fit_and_counts_their_tokens() {
        let msgs = [
            Message::user("a".repeat(40)),      // 10 + 4
            Message::assistant("b".repeat(40)), // 10 + 4
            Message::user("c".repeat(8)),       // 2 + 4
        ];
        let window = HistoryWindow::recent(msgs.iter(), 20);
        assert_eq!(window.turns.len(), 2);
        assert_eq!(window.turns[0].role, ragchat_rag::Role::Assistant);
        assert_eq!(window.turns[1].content, "c".repeat(8));
        assert_eq!(window.tokens, 20);
        assert_eq!(prompt_tokens(&window, &[], "dddd"), 20 + 1 + 4);
    }
}
