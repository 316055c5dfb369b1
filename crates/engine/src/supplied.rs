//! A chat turn over a conversation the caller supplies.
//!
//! Clients of stateless protocols (OpenAI's chat completions) send the whole conversation
//! with every request. [`ChatEngine::turn_supplied`] answers such a turn the way
//! [`ChatEngine::turn`] answers one of ragchat's own: history-aware retrieval, a (streamed)
//! answer, one atomic append. The differences:
//!
//! - the supplied conversation, not the stored one, is the context of retrieval and of the
//!   answer (they are equal in the common case; the caller checked that);
//! - the supplied messages the store lacks are appended before the question, in the same
//!   atomic append as the question and the answer;
//! - an answer equal to one already stored for the same question in another branch of the
//!   conversation (a client that asked for the answer again) is returned as that stored
//!   message instead of being stored twice.
//!
//! Which session a supplied conversation belongs to, and what the store lacks of it, is the
//! protocol adapter's decision (the server's `routes::openai::reconcile`).

use std::time::{Duration, Instant};

use ragchat_memory::{Message, MessageStatus, SessionKey};
use ragchat_rag::{AnswerOptions, AnswerRequest};
use tokio_util::sync::CancellationToken;

use crate::answering::answer_streamed;
use crate::engine::ChatEngine;
use crate::error::EngineError;
use crate::history::{prompt_tokens, HistoryWindow};
use crate::outcome::TurnTimings;

/// A turn over a supplied conversation.
#[derive(Clone, Debug)]
pub struct SuppliedTurn {
    /// The session the turn is stored in.
    pub key: SessionKey,
    /// The conversation before the question, oldest first: the context of the answer.
    pub context: Vec<Message>,
    /// `context[store_from..]` is not in the store yet and is appended before the question.
    pub store_from: usize,
    /// The new user message.
    pub question: String,
    /// Sampling settings passed to the answerer.
    pub options: AnswerOptions,
    /// Answers already stored for this very question in other sessions (branches of the
    /// same conversation), each with its session.
    pub known_answers: Vec<(SessionKey, Message)>,
    /// Time the caller spent reading the store to prepare the turn (reported as the
    /// turn's memory read).
    pub memory_read: Duration,
}

/// What a supplied turn produced.
#[derive(Clone, Debug)]
pub struct SuppliedOutcome {
    /// The session the answer is in: the turn's, or the one holding a known answer.
    pub key: SessionKey,
    /// The question (stored unless `stored` is false).
    pub user_message: Message,
    /// The answer with its sources (status `incomplete` when cancelled).
    pub answer: Message,
    /// False when the answer equalled a known one and nothing was written.
    pub stored: bool,
    /// True when the store was unreachable and the local journal took the turn.
    pub journaled: bool,
    /// The retrieval query actually run.
    pub retrieval_query: String,
    /// Estimated tokens of what the answerer was given (history window, passages,
    /// question), at about four characters per token.
    pub prompt_tokens: usize,
    /// Where the time went.
    pub timings: TurnTimings,
}

impl ChatEngine {
    /// One chat turn over a supplied conversation; see the module docs. Text deltas of
    /// the answer go to `sink` as they are produced; when `cancel` fires mid-answer, the
    /// question and the partial answer are stored, the answer marked `incomplete`.
    ///
    /// # Errors
    /// `Memory(InvalidInput)` for an empty or oversized question or unstored message
    /// (nothing is written); `Memory(Unavailable)` when neither the store nor the journal
    /// can take the turn; `Rag(..)` when retrieval or the answerer fails (nothing is
    /// written).
    pub async fn turn_supplied(
        &self,
        turn: SuppliedTurn,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
        cancel: &CancellationToken,
    ) -> Result<SuppliedOutcome, EngineError> {
        let question = Message::user(turn.question.trim_end_matches(['\r', '\n']));
        self.memory().validate(&question)?;
        let store_from = turn.store_from.min(turn.context.len());
        for m in &turn.context[store_from..] {
            self.memory().validate(m)?;
        }
        let mut timings = TurnTimings {
            memory_read: turn.memory_read,
            ..TurnTimings::default()
        };

        let window = HistoryWindow::recent(turn.context.iter(), self.config().history_token_budget);

        let started = Instant::now();
        let retrieval =
            self.retriever()
                .search(&question.content, &window.turns, self.config().top_k)?;
        timings.retrieval = started.elapsed();
        let prompt_tokens = prompt_tokens(&window, &retrieval.hits, &question.content);

        let request = AnswerRequest {
            question: question.content.clone(),
            history: window.turns,
            hits: retrieval.hits,
            recalled: Vec::new(),
        };
        let started = Instant::now();
        let reply = answer_streamed(
            self.answerer().as_ref(),
            &request,
            Some(&turn.options),
            self.max_message_bytes(),
            sink,
            cancel,
        )
        .await?
        .reply;
        timings.answer = started.elapsed();

        if reply.status == MessageStatus::Complete {
            let known = turn
                .known_answers
                .iter()
                .find(|(_, m)| m.content.trim() == reply.content.trim());
            if let Some((key, stored)) = known {
                return Ok(SuppliedOutcome {
                    key: key.clone(),
                    user_message: question,
                    answer: stored.clone(),
                    stored: false,
                    journaled: false,
                    retrieval_query: retrieval.query,
                    prompt_tokens,
                    timings,
                });
            }
        }

        let mut batch: Vec<Message> = turn.context[store_from..].to_vec();
        batch.push(question.clone());
        batch.push(reply.clone());
        let started = Instant::now();
        let receipt = self.memory().append(&turn.key, batch).await?;
        timings.memory_write = started.elapsed();
        Ok(SuppliedOutcome {
            key: turn.key,
            user_message: question,
            answer: reply,
            stored: true,
            journaled: receipt.journaled,
            retrieval_query: retrieval.query,
            prompt_tokens,
            timings,
        })
    }
}
