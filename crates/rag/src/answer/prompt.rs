//! Prompt assembly for chat-completions models: instructions, a token-budgeted history window,
//! numbered sources and the question.
//!
//! Tokens are counted with `ragchat-core`'s estimate (re-exported here as [`CharEstimate`] and
//! [`TokenCounter`]) and the history window follows its rule, the same as conversation memory's.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use ragchat_core::{recent_window, Role, MESSAGE_OVERHEAD_TOKENS};
pub use ragchat_core::{CharEstimate, TokenCounter};

use super::AnswerRequest;

/// The system instructions sent with every LLM request.
pub const SYSTEM_PROMPT: &str = "You are ragchat, an assistant that answers questions about the \
user's documents. Answer only from the numbered sources in the user's message and the \
conversation so far. Cite every statement that comes from a source with its number in square \
brackets, like [1] or [2][3]. If the sources do not contain the answer, say plainly that the \
documents don't cover it instead of guessing. A source named `conversation` is an earlier message of your conversations with this user: use it when they ask what was said before. Be concise: a few sentences unless asked for more.";

/// One message of a chat-completions prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

/// Builds the chat messages for `request`.
///
/// Order: [`SYSTEM_PROMPT`]; the most recent history turns, whole, oldest first, as many as fit
/// in `history_token_budget` tokens by `counter` (a turn that does not fit ends the window);
/// then one user message with the numbered sources (`[n] path — heading (lines a-b)` and the
/// text; after them the recalled messages, ``[n] conversation `trip`, 2026-11-20: earlier,
/// the user asked`` and the text) followed by the question.
pub fn build_messages(
    request: &AnswerRequest,
    history_token_budget: usize,
    counter: &dyn TokenCounter,
) -> Vec<PromptMessage> {
    let window = recent_window(request.history.iter(), history_token_budget, |turn| {
        counter.count(&turn.content) + MESSAGE_OVERHEAD_TOKENS
    });

    let mut messages = Vec::with_capacity(window.len() + 2);
    messages.push(PromptMessage {
        role: Role::System,
        content: SYSTEM_PROMPT.to_owned(),
    });
    messages.extend(window.into_iter().map(|turn| PromptMessage {
        role: turn.role,
        content: turn.content.clone(),
    }));
    messages.push(PromptMessage {
        role: Role::User,
        content: sources_and_question(request),
    });
    messages
}

fn sources_and_question(request: &AnswerRequest) -> String {
    let mut content = String::from("Sources:\n");
    if request.hits.is_empty() {
        content.push_str("(no relevant passages were found in the documents)\n");
    }
    for (i, hit) in request.hits.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(
            content,
            "\n[{}] {} — {} (lines {}-{})\n{}",
            i + 1,
            hit.path,
            hit.heading,
            hit.line_start,
            hit.line_end,
            hit.text.trim()
        );
    }
    let first = request.hits.len() + 1;
    for (i, turn) in request.recalled.iter().enumerate() {
        let who = match turn.at.role {
            Role::User => "the user asked",
            Role::Assistant => "you answered",
            Role::System => "the instructions said",
        };
        let _ = writeln!(
            content,
            "\n[{}] {}: earlier, {who}\n{}",
            first + i,
            turn.at.label(),
            turn.content.trim()
        );
    }
    let _ = write!(content, "\nQuestion: {}", request.question.trim());
    content
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Chunk;
    use crate::retrieve::{HistoryTurn, Hit};

    fn request(history: Vec<HistoryTurn>) -> AnswerRequest {
        AnswerRequest {
            question: "How does it learn?".into(),
            history,
            hits: vec![Hit::new(
                Chunk {
                    path: "how-models-learn.md".into(),
                    title: "How Models Learn".into(),
                    heading: "How Models Learn > Loss".into(),
                    line_start: 11,
                    line_end: 15,
                    text: "The loss measures error.".into(),
                },
                3.5,
            )],
            recalled: Vec::new(),
        }
    }

    #[test]
    fn char_estimate_rounds_up() {
        assert_eq!(CharEstimate.count(""), 0);
        assert_eq!(CharEstimate.count("abcde"), 2);
        assert_eq!(CharEstimate.count("éééé"), 1);
    }

    #[test]
    fn prompt_has_instructions_history_sources_and_question() {
        let history = vec![
            HistoryTurn::user("What is machine learning?"),
            HistoryTurn::assistant("Learning from data [1]."),
        ];
        let messages = build_messages(&request(history), 1000, &CharEstimate);
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            vec![Role::System, Role::User, Role::Assistant, Role::User]
        );
        assert_eq!(messages[1].content, "What is machine learning?");
        assert_eq!(
            messages[3].content,
            "Sources:\n\n[1] how-models-learn.md — How Models Learn > Loss (lines 11-15)\n\
             The loss measures error.\n\nQuestion: How does it learn?"
        );
    }

    #[test]
    fn recalled_messages_are_numbered_after_the_passages() {
        let mut with_recall = request(Vec::new());
        with_recall.recalled.push(crate::RecalledTurn {
            at: ragchat_core::ConversationRef {
                session: "trip".into(),
                message_id: "m1".into(),
                seq: 7,
                role: Role::User,
                created_at: "2026-11-20T09:30:00Z".into(),
            },
            content: "Is the train to Sintra fast?".into(),
            score: 1.0,
            same_session: false,
        });
        let messages = build_messages(&with_recall, 1000, &CharEstimate);
        let prompt = &messages.last().expect("the question").content;
        assert!(
            prompt.contains(
                "\n[2] conversation `trip`, 2026-11-20: earlier, the user asked\n\
                 Is the train to Sintra fast?\n\nQuestion:"
            ),
            "{prompt}"
        );
    }

    #[test]
    fn history_window_keeps_the_most_recent_whole_turns_within_budget() {
        let history: Vec<HistoryTurn> = (0..10)
            .map(|i| HistoryTurn::user(format!("turn {i} {}", "x".repeat(32))))
            .collect();
        // Each turn costs ceil(39/4) + 4 = 14 tokens: a budget of 30 fits two.
        let messages = build_messages(&request(history), 30, &CharEstimate);
        let window: Vec<&str> = messages[1..messages.len() - 1]
            .iter()
            .map(|m| &m.content[..6])
            .collect();
        assert_eq!(window, vec!["turn 8", "turn 9"]);
        let none = build_messages(&request(vec![HistoryTurn::user("hi")]), 0, &CharEstimate);
        assert_eq!(none.len(), 2);
    }
}
