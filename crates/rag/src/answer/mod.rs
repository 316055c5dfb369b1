//! Answering: turn a question, the conversation so far and retrieved hits into a cited answer.
//!
//! [`Answerer`] is the provider contract. Pick an implementation by what is available:
//!
//! - [`ExtractiveAnswerer`]: offline, no model. Quotes the most relevant sentences of the hits with
//!   `[n]` citations and says so honestly when nothing relevant was found. The default.
//! - [`OpenAiAnswerer`]: any chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server),
//!   streamed. Writes fluent answers; needs a model and costs a network round trip.
//! - [`FallbackAnswerer`]: an LLM backed by the extractive answerer, which answers when the
//!   endpoint fails and for small talk; the answer says so in [`Answer::fallback`].
//!
//! `intent` (what a question asks for, and which sentences do that) serves the extractive
//! answerer.

mod endpoint;
mod extractive;
mod fallback;
mod intent;
mod openai;
mod options;
mod prompt;
mod sse;

use async_trait::async_trait;
use ragchat_core::{ConversationRef, SourceRef};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::recall::RecalledTurn;
use crate::retrieve::{HistoryTurn, Hit};

pub use extractive::{
    example_questions, ExtractiveAnswerer, ExtractiveConfig, NOTHING_FOUND_REPLY,
    NOTHING_RECALLED_REPLY, NO_CONVERSATION_REPLY,
};
pub use fallback::FallbackAnswerer;
pub use openai::{OpenAiAnswerer, OpenAiConfig};
pub use options::AnswerOptions;
pub use prompt::{build_messages, CharEstimate, PromptMessage, TokenCounter, SYSTEM_PROMPT};

/// What an answerer needs: the question, the conversation before it, and the retrieved hits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerRequest {
    /// The user's new message.
    pub question: String,
    /// Earlier turns, oldest first (without the new message).
    pub history: Vec<HistoryTurn>,
    /// Retrieved chunks, best first; an answer cites them as `[1]`, `[2]`, ... in this order.
    pub hits: Vec<Hit>,
    /// Earlier messages of the user's conversations that match the question (not those in
    /// `history`), best first; cited after the hits.
    pub recalled: Vec<RecalledTurn>,
}

/// A cited source of an answer, as the answerer produced it: every field is known.
///
/// Stored with a message and served by the API it becomes the one citation type,
/// [`SourceRef`] (`From<&Source>`), whose heading and line range are optional because
/// older or hand-made entries may lack them. The two stay separate Rust types because
/// their field types differ (`String` / `u32` here, `Option`s there) and callers build and
/// read both; the wire shape of each is unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Document path relative to the corpus root.
    pub path: String,
    /// Heading path of the cited section.
    pub heading: String,
    /// Retrieval score of the cited hit.
    pub score: f32,
    /// First cited line (1-based).
    pub line_start: u32,
    /// Last cited line (1-based, inclusive).
    pub line_end: u32,
    /// Set when the source is a recalled message of the user's conversations; the
    /// passage fields are then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationRef>,
}

impl From<&RecalledTurn> for Source {
    fn from(turn: &RecalledTurn) -> Self {
        Source {
            path: String::new(),
            heading: String::new(),
            score: turn.score as f32,
            line_start: 0,
            line_end: 0,
            conversation: Some(turn.at.clone()),
        }
    }
}

impl From<&Hit> for Source {
    fn from(hit: &Hit) -> Self {
        Source {
            path: hit.path.clone(),
            heading: hit.heading.clone(),
            score: hit.score,
            line_start: hit.line_start,
            line_end: hit.line_end,
            conversation: None,
        }
    }
}

impl From<&Source> for SourceRef {
    /// The citation as stored: an empty heading is no heading; a recalled message has no
    /// passage fields.
    fn from(source: &Source) -> Self {
        if let Some(conversation) = &source.conversation {
            return SourceRef {
                score: source.score,
                conversation: Some(conversation.clone()),
                ..SourceRef::default()
            };
        }
        SourceRef {
            path: source.path.clone(),
            heading: (!source.heading.is_empty()).then(|| source.heading.clone()),
            score: source.score,
            line_start: Some(source.line_start),
            line_end: Some(source.line_end),
            conversation: None,
        }
    }
}

/// A complete answer: its text (with `[n]` markers) and the sources, where `sources[n - 1]` is
/// what `[n]` cites.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// Cited sources in citation-number order.
    pub sources: Vec<Source>,
    /// Set when a backup answerer answered instead of the configured one (see
    /// [`FallbackAnswerer`]): one line for people saying so and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// Something that answers questions from retrieved hits. Object safe: share as `Arc<dyn Answerer>`.
#[async_trait]
pub trait Answerer: Send + Sync {
    /// A short description for logs and health output (`extractive`, `openai:llama3.2`).
    fn describe(&self) -> String;

    /// Answers `request`, passing text deltas to `sink` as they are produced.
    ///
    /// The concatenation of everything passed to `sink` equals the returned [`Answer::text`].
    ///
    /// # Errors
    /// Implementation specific: [`crate::RagError::Unavailable`], [`crate::RagError::Timeout`] or
    /// [`crate::RagError::Llm`] for a remote model. Check [`crate::RagError::is_retryable`].
    async fn answer(
        &self,
        request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer>;

    /// Like [`Answerer::answer`], with per-request sampling settings.
    ///
    /// The default ignores `options` and calls [`Answerer::answer`]: right for answerers
    /// that do not sample. Answerers backed by a model override it.
    ///
    /// # Errors
    /// As [`Answerer::answer`].
    async fn answer_with(
        &self,
        request: &AnswerRequest,
        options: &AnswerOptions,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer> {
        let _ = options;
        self.answer(request, sink).await
    }

    /// The name of the model behind this answerer, when it forwards to one (for listing
    /// it, e.g. in `GET /v1/models`); `None` for answerers without a model.
    fn upstream_model(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_source_is_stored_as_a_source_ref() {
        let source = Source {
            path: "a.md".into(),
            heading: "A > B".into(),
            score: 2.5,
            line_start: 3,
            line_end: 7,
            conversation: None,
        };
        assert_eq!(
            serde_json::to_string(&source).unwrap(),
            r#"{"path":"a.md","heading":"A > B","score":2.5,"line_start":3,"line_end":7}"#
        );
        let stored = SourceRef::from(&source);
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&source).unwrap()
        );
        let untitled = SourceRef::from(&Source {
            heading: String::new(),
            ..source
        });
        assert_eq!(untitled.heading, None);
    }

    #[tokio::test]
    async fn answerers_work_as_shared_trait_objects() {
        let answerers: Vec<Arc<dyn Answerer>> = vec![
            Arc::new(ExtractiveAnswerer::new()),
            Arc::new(
                OpenAiAnswerer::new(OpenAiConfig::new("http://127.0.0.1:9/v1", "m"))
                    .expect("valid config"),
            ),
        ];
        let names: Vec<String> = answerers.iter().map(|a| a.describe()).collect();
        assert_eq!(names[0], "extractive");
        assert!(names[1].starts_with("openai:m at http://127.0.0.1:9/v1"));
        let request = AnswerRequest {
            question: "Continue".into(),
            ..AnswerRequest::default()
        };
        let mut streamed = String::new();
        let answer = answerers[0]
            .answer(&request, &mut |delta| streamed.push_str(delta))
            .await
            .expect("extractive never fails");
        assert_eq!(answer.text, NO_CONVERSATION_REPLY);
        assert_eq!(streamed, answer.text);
    }
}
