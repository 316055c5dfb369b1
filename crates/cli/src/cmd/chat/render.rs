//! How the chat shows things, in the terminal and in piped transcripts: sources with
//! their lines, the status line and warnings at the start, the greeting, role labels,
//! and the dim and yellow of the terminal (plain text when stdout is not one).

use anyhow::Result;
use ragchat_engine::ChatEngine;
use ragchat_memory::{Message, Role, SessionKey, StoreKind};
use ragchat_rag::RecalledTurn;

use crate::terminal::visible;

fn colour(code: &str, text: &str) -> String {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `text` dimmed in a terminal.
pub(super) fn dim(text: &str) -> String {
    colour("2", text)
}

/// `text` in yellow in a terminal.
pub(super) fn yellow(text: &str) -> String {
    colour("33", text)
}

/// `  [1] path › heading (lines a-b)` for each source of an answer; one line is
/// `(line a)`, as on the web page; a recalled message is `` [2] conversation `trip`,
/// 2026-11-20``.
pub(super) fn source_lines(answer: &Message) -> Vec<String> {
    answer
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if let Some(conversation) = &s.conversation {
                // Session ids are restricted to plain characters; shown all the same.
                return format!("  [{}] {}", i + 1, visible(&conversation.label()));
            }
            let heading = s
                .heading
                .as_deref()
                .map(|h| format!(" › {h}"))
                .unwrap_or_default();
            let lines = line_range(s.line_start, s.line_end);
            // Paths and headings come from documents: shown, never executed.
            format!(
                "  [{}] {}",
                i + 1,
                visible(&format!("{}{heading}{lines}", s.path))
            )
        })
        .collect()
}

/// "  remembered: conversation `trip`, 2026-11-20; …": the earlier messages a turn
/// recalled into its context, or nothing when it recalled none.
pub(super) fn recalled_line(recalled: &[RecalledTurn]) -> Option<String> {
    if recalled.is_empty() {
        return None;
    }
    let mut labels: Vec<String> = Vec::new();
    for turn in recalled {
        let label = turn.at.label();
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    Some(format!("  remembered: {}", visible(&labels.join("; "))))
}

/// " (line 3)", " (lines 3-5)", or nothing: how a source's lines are shown, in the
/// terminal and on the web page (`web/app.js` renders them the same way).
pub(super) fn line_range(start: Option<u32>, end: Option<u32>) -> String {
    match (start, end) {
        (Some(a), Some(b)) if b > a => format!(" (lines {a}-{b})"),
        (Some(a), _) => format!(" (line {a})"),
        _ => String::new(),
    }
}

/// The one-line status shown when a chat starts.
pub(super) fn status_line(engine: &ChatEngine, key: &SessionKey, docs: &str) -> String {
    format!(
        "ragchat · user {} · session {} · memory {} · answers {} · docs {docs}",
        key.user(),
        key.session(),
        engine.memory().store_url(),
        engine.answerer().describe(),
    )
}

/// Warnings worth showing when a chat starts.
pub(super) async fn memory_warnings(engine: &ChatEngine) -> Vec<String> {
    let mut warnings = Vec::new();
    if engine.memory().store_kind() == StoreKind::Memory {
        warnings.push(
            "memory is RAM-only (memory://): this conversation is lost when ragchat exits"
                .to_string(),
        );
    }
    warnings.extend(engine.memory().ttl_warning());
    if let Ok(status) = engine.memory().status().await {
        if status.mode == ragchat_memory::Mode::Degraded || status.pending_sync > 0 {
            warnings.push(format!(
                "{} is unreachable: messages are kept in the local journal ({} waiting) and replayed when it is back",
                status.store, status.pending_sync
            ));
        }
    }
    warnings
}

/// What the chat says on start and after /switch.
pub(super) async fn greeting(engine: &ChatEngine, key: &SessionKey) -> Result<String> {
    Ok(match engine.welcome(key).await? {
        Some(welcome) => format!(
            "{} (say \"continue\" to pick up where we left off)",
            visible(&welcome)
        ),
        None => "Ask a question about the documents. /help lists the commands.".to_string(),
    })
}

/// Role label for transcripts.
pub(super) fn role_label(role: Role) -> &'static str {
    match role {
        Role::User => "you",
        Role::Assistant => "ragchat",
        Role::System => "system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendering_of_line_ranges() {
        assert_eq!(line_range(Some(3), Some(3)), " (line 3)");
        assert_eq!(line_range(Some(3), Some(5)), " (lines 3-5)");
        assert_eq!(line_range(Some(3), None), " (line 3)");
        assert_eq!(line_range(None, None), "");
    }
}
