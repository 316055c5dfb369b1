//! Recall in a turn: earlier messages that match the new question join its context,
//! within the same token budget as the recent window.
//!
//! The context of a turn is the recent verbatim window, as before, plus the earlier
//! messages of this conversation that match the question (those no longer in the
//! window), plus, with [`RecallConfig::across`], matching messages of the user's other
//! conversations. Recalled messages take at most [`RecallConfig::budget_share`] of the
//! budget, best first; the window gets the rest. The answerers cite them like
//! documents (``conversation `trip`, 2026-11-20``).
//!
//! Recall needs a store that searches (SQLite, PostgreSQL, Redis with an archive); on
//! any other, or when the search fails or takes longer than [`RecallConfig::timeout`],
//! the turn goes on with nothing recalled: recall adds to a turn, it never fails one.

use std::collections::HashSet;
use std::time::Duration;

use ragchat_memory::{MemoryError, Message, RecallScope, SearchHit, SessionKey, SessionManager};
use ragchat_rag::{recall_query, ConversationRef, RecalledTurn};

use crate::history::message_tokens;

/// How a turn recalls earlier messages.
#[derive(Clone, Debug, PartialEq)]
pub struct RecallConfig {
    /// Recall at all (earlier messages of the same conversation).
    pub enabled: bool,
    /// Also recall from the user's other conversations.
    pub across: bool,
    /// At most this many recalled messages per turn.
    pub max_messages: usize,
    /// Share of the history token budget recalled messages may take (0 to 1).
    pub budget_share: f32,
    /// A recall that takes longer is given up (the turn goes on without it).
    pub timeout: Duration,
}

impl Default for RecallConfig {
    /// On, this conversation only, up to 4 messages in a quarter of the budget, 500 ms.
    fn default() -> Self {
        RecallConfig {
            enabled: true,
            across: false,
            max_messages: 4,
            budget_share: 0.25,
            timeout: Duration::from_millis(500),
        }
    }
}

impl RecallConfig {
    /// Recall off.
    pub fn off() -> Self {
        RecallConfig {
            enabled: false,
            ..RecallConfig::default()
        }
    }
}

/// The messages recalled for `question` in `key`'s turn, best first, fitting `budget`
/// tokens; `window` holds the messages already in the turn's context.
pub(crate) async fn recall(
    memory: &SessionManager,
    key: &SessionKey,
    question: &str,
    window: &[&Message],
    config: &RecallConfig,
    budget: usize,
) -> Vec<RecalledTurn> {
    let text = recall_query(question);
    if !config.enabled || text.is_empty() {
        return Vec::new();
    }
    let scope = if config.across {
        RecallScope::AllSessions
    } else {
        RecallScope::Session
    };
    let skip: HashSet<_> = window.iter().map(|m| m.id).collect();
    let search = memory.recall(key, &text, scope, config.max_messages, &skip);
    let hits = match tokio::time::timeout(config.timeout, search).await {
        Ok(Ok(hits)) => hits,
        Ok(Err(MemoryError::Unsupported(_))) => return Vec::new(),
        Ok(Err(error)) if error.is_retryable() => {
            // An outage: memory reports it once; every turn saying it again is noise.
            tracing::debug!(%error, "recall failed; the turn goes on without it");
            return Vec::new();
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "recall failed; the turn goes on without it");
            return Vec::new();
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?config.timeout,
                "recall took too long; the turn goes on without it"
            );
            return Vec::new();
        }
    };
    let mut left = budget;
    let mut recalled = Vec::new();
    for hit in hits {
        let tokens = message_tokens(&hit.content);
        if tokens <= left {
            left -= tokens;
            recalled.push(recalled_turn(hit, key.session()));
        }
    }
    recalled
}

/// Estimated tokens the recalled messages take in a prompt.
pub(crate) fn recalled_tokens(recalled: &[RecalledTurn]) -> usize {
    recalled.iter().map(|t| message_tokens(&t.content)).sum()
}

fn recalled_turn(hit: SearchHit, session: &str) -> RecalledTurn {
    RecalledTurn {
        same_session: hit.session == session,
        at: ConversationRef {
            created_at: hit.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            session: hit.session,
            message_id: hit.message_id.to_string(),
            seq: hit.seq,
            role: hit.role,
        },
        content: hit.content,
        score: hit.score,
    }
}
