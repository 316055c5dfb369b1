//! The protocol's JSON: requests as clients send them (tolerant: unknown fields are
//! ignored), responses, stream chunks and the model list as clients expect them, plus
//! ragchat's two documented extras, `sources` and `session_id`.

use ragchat_memory::{Message, SourceRef};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest request body: the whole conversation a client resends.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// `POST /v1/chat/completions`. Fields not listed here (`top_p`, `tools`, `user`, ...) are
/// accepted and ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// One of the ids `GET /v1/models` lists.
    #[schema(example = "ragchat")]
    pub model: String,
    /// The conversation, oldest first; the last message is the user's new one.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as `chat.completion.chunk` server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// With `{"include_usage": true}` the stream ends with a chunk carrying `usage`.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Sampling temperature, 0 to 2; passed to the model behind `--llm-url`.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Cap on the answer's tokens; passed to the model behind `--llm-url`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// The protocol's newer name for `max_tokens`; the smaller of the two applies.
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// Number of choices; only 1 is supported.
    #[serde(default)]
    pub n: Option<u32>,
}

/// Stream settings.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with the token usage (and no choices).
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// One message of the conversation a client sends.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    /// `system`, `developer` (kept as system), `user` or `assistant`.
    #[schema(example = "user")]
    pub role: String,
    /// The text, or an array of content parts of which only `text` parts are supported.
    #[serde(default)]
    pub content: Option<MessageContent>,
}

/// A message's content: a string or content parts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content parts (`{"type":"text","text":"..."}`), joined with newlines.
    Parts(Vec<ContentPart>),
}

/// One content part.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContentPart {
    /// `text` (other kinds, such as images, are refused).
    #[serde(rename = "type")]
    pub kind: String,
    /// The text of a `text` part.
    #[serde(default)]
    pub text: Option<String>,
}

/// A complete answer (`"object": "chat.completion"`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    /// `chatcmpl-...`, the same on every chunk of a streamed answer.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix time (seconds) the answer was made.
    pub created: i64,
    /// The model id the request named.
    pub model: String,
    /// Exactly one choice.
    pub choices: Vec<Choice>,
    /// Token counts, estimated at about four characters per token.
    pub usage: Usage,
    /// ragchat extra: the passages the answer cites; `[n]` in the content refers to the
    /// source whose `index` is n.
    pub sources: Vec<CitedSource>,
    /// ragchat extra: the session the conversation is stored in (also in the
    /// `X-Session-Id` response header).
    pub session_id: String,
}

/// The one choice of a completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: AssistantMessage,
    /// `stop`.
    pub finish_reason: String,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
}

/// The assistant's message.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: String,
    /// The answer text, with `[n]` citation markers.
    pub content: String,
    /// Always null.
    #[schema(value_type = Option<String>)]
    pub refusal: Option<()>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Usage {
    /// What the answerer was given: history window, passages and question.
    pub prompt_tokens: u64,
    /// The answer.
    pub completion_tokens: u64,
    /// The sum.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage from the two estimates.
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        let (prompt, completion) = (prompt_tokens as u64, completion_tokens as u64);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// A cited passage (ragchat extra).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CitedSource {
    /// The citation number: `[index]` in the content.
    pub index: usize,
    /// Path of the document, relative to the docs folder.
    pub path: String,
    /// Heading of the section, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    /// First line of the passage (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_start: Option<u32>,
    /// Last line (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_end: Option<u32>,
    /// Retrieval score.
    pub score: f32,
}

/// The sources of a stored answer, numbered as its `[n]` markers.
pub fn cited_sources(answer: &Message) -> Vec<CitedSource> {
    answer
        .sources
        .iter()
        .enumerate()
        .map(|(i, s): (usize, &SourceRef)| CitedSource {
            index: i + 1,
            path: s.path.clone(),
            heading: s.heading.clone(),
            line_start: s.line_start,
            line_end: s.line_end,
            score: s.score,
        })
        .collect()
}

/// One server-sent event of a streamed answer (`"object": "chat.completion.chunk"`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletionChunk {
    /// The completion id, the same on every chunk.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix time (seconds) the answer started.
    pub created: i64,
    /// The model id the request named.
    pub model: String,
    /// One choice; empty on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Only on the last chunk, with `stream_options.include_usage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// ragchat extra, only on the chunk with `finish_reason`: the cited passages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<CitedSource>>,
    /// ragchat extra, only on the chunk with `finish_reason`: the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// The choice of a chunk.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// `stop` on the last chunk with a choice, else null.
    pub finish_reason: Option<String>,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
}

/// What a chunk adds to the answer.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Delta {
    /// `assistant`, on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A piece of the answer text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// What this server offers.
    pub data: Vec<Model>,
}

/// A model id a client may ask for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Model {
    /// The id to send as `model`.
    #[schema(example = "ragchat")]
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix time (seconds) the server started.
    pub created: i64,
    /// `ragchat`.
    pub owned_by: String,
    /// ragchat extra: what answers under this id.
    pub description: String,
}
