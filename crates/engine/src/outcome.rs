//! What a turn produced and where its time went: returned to the interface that ran it,
//! which shows it (the CLI) or records it as metrics and responses (the server). The
//! engine itself records nothing.

use std::time::Duration;

use ragchat_memory::{Message, MessageId};
use ragchat_rag::RecalledTurn;
use serde::Serialize;

/// Where a turn's time went.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TurnTimings {
    /// Reading the history.
    pub memory_read: Duration,
    /// Recalling earlier messages that match the question (searching memory).
    pub recall: Duration,
    /// Retrieval.
    pub retrieval: Duration,
    /// Producing the answer.
    pub answer: Duration,
    /// Appending question and answer.
    pub memory_write: Duration,
}

/// What a turn produced.
#[derive(Clone, Debug)]
pub struct TurnOutcome {
    /// The stored question.
    pub user_message: Message,
    /// The stored answer, with its sources (status `incomplete` when cancelled).
    pub answer: Message,
    /// Earlier messages recalled into the turn's context, best first (the answer cites
    /// those it used).
    pub recalled: Vec<RecalledTurn>,
    /// The retrieval query actually run (for debugging).
    pub retrieval_query: String,
    /// True when the store was unreachable and the local journal took the turn.
    pub journaled: bool,
    /// True when the history came only from this machine (store unreachable).
    pub partial_history: bool,
    /// Set when the offline answerer stood in for the LLM: one line saying so and why.
    pub fallback: Option<String>,
    /// Where the time went.
    pub timings: TurnTimings,
}

/// Ids to give a turn's two messages instead of fresh ones: a retried turn then writes
/// the same messages, which the store's id-idempotent append keeps once (see the
/// server's `Idempotency-Key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TurnIds {
    /// The id of the stored question.
    pub question: MessageId,
    /// The id of the stored answer.
    pub answer: MessageId,
}
