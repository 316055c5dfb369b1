//! `ChatEngine`: one chat turn, end to end.
//!
//! 1. validate the message (nothing is read or written for bad input);
//! 2. read the recent history within a token budget (one coherent cached read);
//! 3. retrieve with the history, so follow-ups resolve against earlier turns;
//! 4. answer (offline extractive or an LLM), streaming deltas to the caller;
//! 5. append the question and the answer in one atomic, idempotent append.
//!
//! A turn that is cancelled while the answer streams (a client that went away) stores
//! the question and the partial answer, marked `incomplete`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ragchat_memory::{
    MemoryError, Message, MessageId, MessageStatus, Role, SessionKey, SessionManager, SourceRef,
};
use ragchat_rag::{AnswerRequest, Answerer, HistoryTurn, Index, RagError, Retriever, Source};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How a turn is put together.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Chunks retrieved per turn.
    pub top_k: usize,
    /// Token budget of the history handed to retrieval and the answerer.
    pub history_token_budget: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            top_k: 3,
            history_token_budget: 1500,
        }
    }
}

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Conversation memory refused or failed (bad input, store and journal unavailable).
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Retrieval or the answerer failed (e.g. the LLM endpoint is unreachable).
    #[error(transparent)]
    Rag(#[from] RagError),
}

impl EngineError {
    /// Whether the caller's input was at fault (nothing was written).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, EngineError::Memory(MemoryError::InvalidInput(_)))
            || matches!(self, EngineError::Rag(RagError::InvalidInput(_)))
    }

    /// Whether the same turn may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Memory(e) => e.is_retryable(),
            EngineError::Rag(e) => e.is_retryable(),
        }
    }
}

/// Where a turn's time went.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TurnTimings {
    /// Reading the history.
    pub memory_read: Duration,
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

/// Converts stored messages to the retrieval crate's plain history turns.
pub fn history_turns<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Vec<HistoryTurn> {
    messages
        .into_iter()
        .map(|m| HistoryTurn {
            role: match m.role {
                Role::User => ragchat_rag::Role::User,
                Role::Assistant => ragchat_rag::Role::Assistant,
                Role::System => ragchat_rag::Role::System,
            },
            content: m.content.clone(),
        })
        .collect()
}

/// A retrieved source as the memory crate stores it.
pub(crate) fn source_ref(s: &Source) -> SourceRef {
    SourceRef {
        path: s.path.clone(),
        heading: (!s.heading.is_empty()).then(|| s.heading.clone()),
        score: s.score,
        line_start: Some(s.line_start),
        line_end: Some(s.line_end),
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
        let window = ragchat_memory::context::select_recent(
            history.iter(),
            self.config.history_token_budget,
        );
        let turns = history_turns(window);
        drop(history);
        timings.memory_read = started.elapsed();

        let started = Instant::now();
        let retrieval = self
            .retriever
            .search(&question.content, &turns, self.config.top_k)?;
        timings.retrieval = started.elapsed();

        let request = AnswerRequest {
            question: question.content.clone(),
            history: turns,
            hits: retrieval.hits,
        };
        let started = Instant::now();
        let streamed = Arc::new(Mutex::new(String::new()));
        let answer = {
            let streamed = Arc::clone(&streamed);
            let mut tee = move |delta: &str| {
                streamed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(delta);
                sink(delta);
            };
            tokio::select! {
                answer = self.answerer.answer(&request, &mut tee) => Some(answer?),
                _ = cancel.cancelled() => None,
            }
        };
        timings.answer = started.elapsed();

        let fallback = answer.as_ref().and_then(|a| a.fallback.clone());
        let reply = match answer {
            Some(answer) => Message::assistant(answer.text)
                .with_sources(answer.sources.iter().map(source_ref).collect()),
            None => {
                let partial =
                    std::mem::take(&mut *streamed.lock().unwrap_or_else(|e| e.into_inner()));
                let partial = if partial.trim().is_empty() {
                    "(no answer: the turn was cancelled)".to_string()
                } else {
                    partial
                };
                Message::assistant(partial).with_status(MessageStatus::Incomplete)
            }
        };
        let mut reply = self.fit_answer(reply);
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
            retrieval_query: retrieval.query,
            journaled: receipt.journaled,
            partial_history,
            fallback,
            timings,
        })
    }

    /// The size limit is for what people send; an answer longer than it (a verbose LLM)
    /// is cut at the limit and marked `incomplete` rather than failing the turn.
    pub(crate) fn fit_answer(&self, mut reply: Message) -> Message {
        let limit = self.memory.config().max_content_bytes;
        if reply.content.len() > limit {
            let mut cut = limit;
            while !reply.content.is_char_boundary(cut) {
                cut -= 1;
            }
            reply.content.truncate(cut);
            reply.status = MessageStatus::Incomplete;
        }
        reply
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

/// "Welcome back! Last time you asked about ..." from the most recent user messages that
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
