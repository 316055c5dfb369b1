//! Checking a chat-completions request before anything is read or written: every refusal
//! names the field at fault (`param`), as the protocol's errors do.

use ragchat_memory::Role;
use ragchat_rag::AnswerOptions;

use super::error::OpenAiError;
use super::reconcile::SentMessage;
use super::wire::{ChatCompletionRequest, ChatMessage, MessageContent};

/// A request that passed the checks.
#[derive(Debug)]
pub struct CheckedRequest {
    /// The model id, one the server offers.
    pub model: String,
    /// The conversation; the last message is the user's question.
    pub sent: Vec<SentMessage>,
    /// Answer as a stream of chunks.
    pub stream: bool,
    /// End the stream with a usage chunk.
    pub include_usage: bool,
    /// Sampling settings for the answerer.
    pub options: AnswerOptions,
}

/// Checks `request` against the models offered and the message size limit.
///
/// # Errors
/// 404 `model_not_found`; 413 for a message over `max_message_bytes`; 400 for everything
/// else (`n` other than 1, `temperature` outside 0..=2, a zero token cap, no messages, an
/// unsupported role or content part, an empty message, a last message that is not the
/// user's).
pub fn check(
    request: ChatCompletionRequest,
    models: &[String],
    max_message_bytes: usize,
) -> Result<CheckedRequest, OpenAiError> {
    if !models.contains(&request.model) {
        return Err(OpenAiError::model_not_found(&request.model, models));
    }
    if let Some(n) = request.n.filter(|n| *n != 1) {
        return Err(OpenAiError::invalid(
            "n",
            format!("n must be 1: ragchat gives one answer per request, not {n}"),
        ));
    }
    if let Some(t) = request.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
        return Err(OpenAiError::invalid(
            "temperature",
            format!("temperature must be between 0 and 2, got {t}"),
        ));
    }
    let mut max_tokens = None;
    for (param, cap) in [
        ("max_tokens", request.max_tokens),
        ("max_completion_tokens", request.max_completion_tokens),
    ] {
        match cap {
            Some(0) => {
                return Err(OpenAiError::invalid(
                    param,
                    format!("{param} must be at least 1"),
                ))
            }
            Some(cap) => max_tokens = Some(max_tokens.map_or(cap, |m: u32| m.min(cap))),
            None => {}
        }
    }
    if request.messages.is_empty() {
        return Err(OpenAiError::invalid(
            "messages",
            "messages is empty: send at least the user's message",
        ));
    }
    let sent = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| sent_message(i, m, max_message_bytes))
        .collect::<Result<Vec<_>, _>>()?;
    if sent.last().is_some_and(|m| m.role != Role::User) {
        return Err(OpenAiError::invalid(
            "messages",
            "the last message must be the user's (role \"user\"): it is the one answered",
        ));
    }
    Ok(CheckedRequest {
        model: request.model,
        sent,
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        options: AnswerOptions {
            temperature: request.temperature,
            max_tokens,
        },
    })
}

fn sent_message(
    index: usize,
    message: ChatMessage,
    max_message_bytes: usize,
) -> Result<SentMessage, OpenAiError> {
    let param = format!("messages[{index}]");
    let role = match message.role.as_str() {
        "system" | "developer" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "tool" | "function" => {
            return Err(OpenAiError::invalid(
                &format!("{param}.role"),
                format!(
                    "{param}: role {:?} is not supported: ragchat answers from documents and \
                     calls no tools",
                    message.role
                ),
            ))
        }
        other => {
            return Err(OpenAiError::invalid(
                &format!("{param}.role"),
                format!("{param}: role {other:?} is not one of system, developer, user, assistant"),
            ))
        }
    };
    let content_param = format!("{param}.content");
    let content = match message.content {
        None => {
            return Err(OpenAiError::invalid(
                &content_param,
                format!("{content_param} is missing"),
            ))
        }
        Some(MessageContent::Text(text)) => text,
        Some(MessageContent::Parts(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(text)) => texts.push(text),
                    ("text", None) => {
                        return Err(OpenAiError::invalid(
                            &content_param,
                            format!("{content_param}[{j}] is a text part without text"),
                        ))
                    }
                    (kind, _) => {
                        return Err(OpenAiError::invalid(
                            &content_param,
                            format!(
                                "{content_param}[{j}]: only text parts are supported, not {kind:?}"
                            ),
                        ))
                    }
                }
            }
            texts.join("\n")
        }
    };
    if content.len() > max_message_bytes {
        return Err(OpenAiError::payload_too_large(
            Some(&content_param),
            format!(
                "{content_param} is {} bytes; the limit is {max_message_bytes} bytes",
                content.len()
            ),
        ));
    }
    if content.trim().is_empty() {
        return Err(OpenAiError::invalid(
            &content_param,
            format!("{content_param} is empty"),
        ));
    }
    Ok(SentMessage::new(role, content))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;

    fn checked(body: serde_json::Value) -> Result<CheckedRequest, OpenAiError> {
        let request: ChatCompletionRequest = serde_json::from_value(body).expect("parses");
        check(request, &["ragchat".to_string()], 100)
    }

    fn refusal(body: serde_json::Value) -> (StatusCode, String) {
        let e = checked(body).expect_err("refused");
        let param = serde_json::to_value(e.body()).unwrap()["error"]["param"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (e.status(), param)
    }

    #[test]
    fn accepts_the_usual_shapes_and_ignores_unknown_fields() {
        let request = checked(json!({
            "model": "ragchat",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is"}, {"type": "text", "text": "ML?"}], "name": "al"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.5,
            "max_tokens": 50,
            "max_completion_tokens": 40,
            "top_p": 1, "tools": [], "user": "someone", "seed": 7,
        }))
        .expect("accepted");
        assert_eq!(
            request.sent,
            vec![
                SentMessage::new(Role::System, "Be brief."),
                SentMessage::new(Role::User, "What is\nML?"),
            ]
        );
        assert!(request.stream && request.include_usage);
        assert_eq!(request.options.temperature, Some(0.5));
        assert_eq!(request.options.max_tokens, Some(40));
        let plain = checked(json!({"model": "ragchat", "messages": [{"role": "user", "content": "hi"}], "stream": null}))
            .expect("accepted");
        assert!(!plain.stream && !plain.include_usage);
        assert_eq!(plain.options, AnswerOptions::default());
    }

    #[test]
    fn refusals_name_the_field() {
        let user = json!({"role": "user", "content": "hi"});
        let cases = [
            (
                json!({"model": "gpt-4", "messages": [user]}),
                StatusCode::NOT_FOUND,
                "model",
            ),
            (
                json!({"model": "ragchat", "messages": [user], "n": 2}),
                StatusCode::BAD_REQUEST,
                "n",
            ),
            (
                json!({"model": "ragchat", "messages": [user], "temperature": 2.5}),
                StatusCode::BAD_REQUEST,
                "temperature",
            ),
            (
                json!({"model": "ragchat", "messages": [user], "max_tokens": 0}),
                StatusCode::BAD_REQUEST,
                "max_tokens",
            ),
            (
                json!({"model": "ragchat", "messages": []}),
                StatusCode::BAD_REQUEST,
                "messages",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "tool", "content": "x"}, user]}),
                StatusCode::BAD_REQUEST,
                "messages[0].role",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "robot", "content": "x"}, user]}),
                StatusCode::BAD_REQUEST,
                "messages[0].role",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "assistant", "content": null}, user]}),
                StatusCode::BAD_REQUEST,
                "messages[0].content",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
                StatusCode::BAD_REQUEST,
                "messages[0].content",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "user", "content": "  "}]}),
                StatusCode::BAD_REQUEST,
                "messages[0].content",
            ),
            (
                json!({"model": "ragchat", "messages": [{"role": "user", "content": "x".repeat(101)}]}),
                StatusCode::PAYLOAD_TOO_LARGE,
                "messages[0].content",
            ),
            (
                json!({"model": "ragchat", "messages": [user, {"role": "assistant", "content": "a"}]}),
                StatusCode::BAD_REQUEST,
                "messages",
            ),
        ];
        for (body, status, param) in cases {
            assert_eq!(refusal(body.clone()), (status, param.to_string()), "{body}");
        }
    }
}
