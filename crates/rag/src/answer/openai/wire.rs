//! The chat-completions wire format: the request body, the (streamed) completion as servers
//! send it, and the message of an error body.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::answer::prompt::PromptMessage;

/// Longest error message kept from an error response body.
const MAX_ERROR_CHARS: usize = 500;

/// The request body: the prompt and the sampling settings, always streamed.
#[derive(Serialize)]
pub(super) struct ChatRequest<'a> {
    pub(super) model: &'a str,
    pub(super) messages: &'a [PromptMessage],
    pub(super) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
}

/// A streamed chunk or a whole completion; every field optional, as servers differ.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Completion {
    choices: Vec<Choice>,
    pub(super) error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Choice {
    delta: Option<Message>,
    message: Option<Message>,
    /// Legacy completions and some llama.cpp builds put the text here.
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message {
    content: Option<String>,
}

impl Completion {
    /// The text of every choice, joined: a streamed delta, a whole message, or legacy `text`.
    pub(super) fn content(&self) -> String {
        self.choices
            .iter()
            .filter_map(|c| {
                let message = c.delta.as_ref().or(c.message.as_ref());
                message
                    .and_then(|m| m.content.as_deref())
                    .or(c.text.as_deref())
            })
            .collect()
    }
}

/// The message of an error body: `{"error":{"message":..}}`, `{"error":".."}`, `{"message":..}`
/// or `{"detail":..}`, else the JSON itself.
pub(super) fn error_message(value: &Value) -> String {
    let candidates = [
        value.pointer("/error/message"),
        value.get("error").filter(|e| e.is_string()),
        value.get("message"),
        value.get("detail"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| value.to_string())
}

/// `message` cut to [`MAX_ERROR_CHARS`] characters, with an ellipsis when cut.
pub(super) fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_types_tolerate_server_differences() {
        let openai =
            r#"{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        let null_content = r#"{"choices":[{"delta":{"role":"assistant","content":null}}]}"#;
        let usage_only = r#"{"choices":[],"usage":{"total_tokens":3}}"#;
        let llama_cpp = r#"{"choices":[{"text":" there"}]}"#;
        let whole = r#"{"choices":[{"message":{"role":"assistant","content":"All."}}]}"#;
        let contents: Vec<String> = [openai, null_content, usage_only, llama_cpp, whole]
            .iter()
            .map(|json| serde_json::from_str::<Completion>(json).map(|c| c.content()))
            .collect::<std::result::Result<_, _>>()
            .expect("all parse");
        assert_eq!(contents, vec!["Hi", "", "", " there", "All."]);
    }

    #[test]
    fn error_messages_are_found_in_common_shapes() {
        let shapes = [
            (
                r#"{"error":{"message":"bad model","type":"invalid"}}"#,
                "bad model",
            ),
            (r#"{"error":"model not found"}"#, "model not found"),
            (r#"{"detail":"Not Found"}"#, "Not Found"),
            (r#"{"weird":1}"#, r#"{"weird":1}"#),
        ];
        for (body, expected) in shapes {
            let json: Value = serde_json::from_str(body).expect("valid json");
            assert_eq!(error_message(&json), expected);
        }
    }
}
