//! `ChatEngine`: one chat turn, end to end.
//!
//! 1. validate the message (nothing is read or written for bad input);
//! 2. read the recent history within a token budget (one coherent cached read), and
//!    recall earlier messages that match the question within the same budget
//!    ([`crate::recall`]);
//! 3. retrieve with the history, so follow-ups resolve against earlier turns;
//! 4. answer (offline extractive or an LLM), streaming deltas to the caller;
//! 5. append the question and the answer in one atomic, idempotent append.
//!
//! A turn that is cancelled while the answer streams (a client that went away) stores
//! the question and the partial answer, marked `incomplete`.

use std::sync::Arc;
use std::time::Instant;

use ragchat_memory::context::select_recent;
use ragchat_memory::{Message, SessionKey, SessionManager};
use ragchat_rag::{AnswerRequest, Answerer, Index, Retriever};
use tokio_util::sync::CancellationToken;

use crate::answering::answer_streamed;
use crate::error::EngineError;
use crate::history::HistoryWindow;
use crate::input::{check_message, MessageRejection};
use crate::outcome::{TurnIds, TurnOutcome, TurnTimings};
use crate::recall::{recall, recalled_tokens, RecallConfig};
use crate::welcome::welcome_text;

/// How a turn is put together.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Chunks retrieved per turn.
    pub top_k: usize,
    /// Token budget of the history handed to retrieval and the answerer (the recent
    /// window and the recalled messages).
    pub history_token_budget: usize,
    /// Recalling earlier messages into the turn's context.
    pub recall: RecallConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            top_k: 3,
            history_token_budget: 1500,
            recall: RecallConfig::default(),
        }
    }
}

/// Memory + retrieval + answerer. Cheap to clone; share it between tasks.
#[derive(Clone)]
pub struct ChatEngine {
    memory: SessionManager,
    index: Index,
    retriever: Arc<Retriever>,
    answerer: Arc<dyn Answerer>,
    config: EngineConfig,
}

impl std::fmt::Debug for ChatEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatEngine")
            .field("store", &self.memory.store_url())
            .field("answerer", &self.answerer.describe())
            .field("config", &self.config)
            .finish()
    }
}

impl ChatEngine {
    /// An engine over a memory manager, an index and an answerer.
    pub fn new(
        memory: SessionManager,
        index: Index,
        answerer: Arc<dyn Answerer>,
        config: EngineConfig,
    ) -> Self {
        let retriever = Arc::new(index.retriever());
        ChatEngine {
            memory,
            index,
            retriever,
            answerer,
            config,
        }
    }

    /// The conversation memory.
    pub fn memory(&self) -> &SessionManager {
        &self.memory
    }

    /// The document index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The retriever every turn searches with.
    pub fn retriever(&self) -> &Retriever {
        &self.retriever
    }

    /// The answerer.
    pub fn answerer(&self) -> &Arc<dyn Answerer> {
        &self.answerer
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Longest accepted message content, in bytes (the memory crate's limit).
    pub fn max_message_bytes(&self) -> usize {
        self.memory.config().max_content_bytes
    }

    /// Refuses a message before any work: over [`ChatEngine::max_message_bytes`], or empty.
    ///
    /// # Errors
    /// What is wrong with it; nothing has been read or written.
    pub fn check_message(&self, content: &str) -> Result<(), MessageRejection> {
        check_message(content, self.max_message_bytes())
    }

    /// One chat turn; see the module docs. Text deltas of the answer go to `sink` as
    /// they are produced.
    ///
    /// # Errors
    /// `Memory(InvalidInput)` for an empty or oversized message (nothing is written);
    /// `Memory(Unavailable)` when neither the store nor the journal can take the turn;
    /// `Rag(..)` when retrieval or the answerer fails (nothing is written).
    pub async fn turn(
        &self,
        key: &SessionKey,
        text: &str,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<TurnOutcome, EngineError> {
        self.turn_cancellable(key, text, sink, &CancellationToken::new())
            .await
    }

    /// Like [`ChatEngine::turn`]; when `cancel` fires while the answer streams, the
    /// question and the partial answer are stored, the answer marked `incomplete`.
    ///
    /// # Errors
    /// As [`ChatEngine::turn`].
    pub async fn turn_cancellable(
        &self,
        key: &SessionKey,
        text: &str,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
        cancel: &CancellationToken,
    ) -> Result<TurnOutcome, EngineError> {
        self.turn_with_ids(key, text, None, sink, cancel).await
    }

    /// Like [`ChatEngine::turn_cancellable`], giving the two messages `ids` (fresh ones
    /// when `None`).
    ///
    /// # Errors
    /// As [`ChatEngine::turn`].
    pub async fn turn_with_ids(
        &self,
        key: &SessionKey,
        text: &str,
        ids: Option<TurnIds>,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
        cancel: &CancellationToken,
    ) -> Result<TurnOutcome, EngineError> {
        let mut question = Message::user(text.trim_end_matches(['\r', '\n']));
        if let Some(ids) = ids {
            question.id = ids.question;
        }
        self.memory.validate(&question)?;
        let mut timings = TurnTimings::default();

        let started = Instant::now();
        let history = self.memory.history(key).await?;
        let partial_history = history.is_partial();
        timings.memory_read = started.elapsed();

        let started = Instant::now();
        let budget = self.config.history_token_budget;
        let recall_budget =
            (budget as f32 * self.config.recall.budget_share.clamp(0.0, 1.0)) as usize;
        let recent = select_recent(history.iter(), budget);
        let recalled = recall(
            &self.memory,
            key,
            &question.content,
            &recent,
            &self.config.recall,
            recall_budget,
        )
        .await;
        // Recalled messages take their share of the budget from the window.
        let window = if recalled.is_empty() {
            HistoryWindow::of(recent)
        } else {
            HistoryWindow::recent(history.iter(), budget - recalled_tokens(&recalled))
        };
        drop(history);
        timings.recall = started.elapsed();

        let started = Instant::now();
        let retrieval =
            self.retriever
                .search(&question.content, &window.turns, self.config.top_k)?;
        timings.retrieval = started.elapsed();

        let request = AnswerRequest {
            question: question.content.clone(),
            history: window.turns,
            hits: retrieval.hits,
            recalled,
        };
        let started = Instant::now();
        let answered = answer_streamed(
            self.answerer.as_ref(),
            &request,
            None,
            self.max_message_bytes(),
            sink,
            cancel,
        )
        .await?;
        timings.answer = started.elapsed();

        let mut reply = answered.reply;
        if let Some(ids) = ids {
            reply.id = ids.answer;
        }
        let started = Instant::now();
        let receipt = self
            .memory
            .append(key, vec![question.clone(), reply.clone()])
            .await?;
        timings.memory_write = started.elapsed();
        Ok(TurnOutcome {
            user_message: question,
            answer: reply,
            recalled: request.recalled,
            retrieval_query: retrieval.query,
            journaled: receipt.journaled,
            partial_history,
            fallback: answered.fallback,
            timings,
        })
    }

    /// A greeting for someone resuming a conversation, naming what they asked last
    /// time; `None` for a new conversation.
    ///
    /// # Errors
    /// As [`SessionManager::history`].
    pub async fn welcome(&self, key: &SessionKey) -> Result<Option<String>, EngineError> {
        let history = self.memory.history(key).await?;
        Ok(welcome_text(history.iter()))
    }
}
