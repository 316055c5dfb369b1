//! [`OpenAiAnswerer`]: answers with any OpenAI-compatible chat-completions endpoint, streamed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prompt::{build_messages, CharEstimate, PromptMessage, TokenCounter};
use super::sse::SseDecoder;
use super::{Answer, AnswerRequest, Answerer, Source};
use crate::error::{RagError, Result};

/// Longest error message kept from an error response body.
const MAX_ERROR_CHARS: usize = 500;
/// Upper bound for one retry delay, whatever the server's `Retry-After` says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Settings of an [`OpenAiAnswerer`]. Built by the caller (the CLI maps its flags and environment
/// onto it; this crate reads no environment variables).
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1` (Ollama);
    /// `/chat/completions` is appended unless already there.
    pub base_url: String,
    /// Model name as the endpoint knows it.
    pub model: String,
    /// Bearer token, if the endpoint wants one.
    pub api_key: Option<String>,
    /// Limit for establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit for the response headers, and for silence between two streamed chunks.
    pub timeout: Duration,
    /// Retries after the first attempt, on connect errors, timeouts, 408, 429 and 5xx, as long
    /// as nothing was streamed yet.
    pub max_retries: u32,
    /// First retry delay; doubled for each further retry (a longer `Retry-After` wins).
    pub retry_backoff: Duration,
    /// Tokens of conversation history to include in the prompt, most recent first.
    pub history_token_budget: usize,
    /// Sampling temperature; `None` leaves the endpoint's default.
    pub temperature: Option<f32>,
    /// Cap on generated tokens; `None` leaves the endpoint's default.
    pub max_tokens: Option<u32>,
}

impl OpenAiConfig {
    /// A configuration with defaults: 5 s connect, 60 s response timeout, 2 retries from 500 ms,
    /// 2000 history tokens, temperature 0.2.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_backoff: Duration::from_millis(500),
            history_token_budget: 2000,
            temperature: Some(0.2),
            max_tokens: None,
        }
    }
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the API key.
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("history_token_budget", &self.history_token_budget)
            .finish_non_exhaustive()
    }
}

/// Answers with a chat-completions model, streaming its tokens to the sink.
///
/// The prompt is built by [`build_messages`]: instructions, the history window, the hits as
/// numbered sources, the question. The returned [`Answer::sources`] are all hits in that
/// numbering, so the model's `[n]` refers to `sources[n - 1]`. Create once and clone: the HTTP
/// connection pool is shared.
#[derive(Clone)]
pub struct OpenAiAnswerer {
    config: Arc<OpenAiConfig>,
    endpoint: String,
    client: reqwest::Client,
    counter: Arc<dyn TokenCounter>,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [PromptMessage],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

/// A streamed chunk or a whole completion; every field optional, as servers differ.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Completion {
    choices: Vec<Choice>,
    error: Option<Value>,
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
    fn content(&self) -> String {
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

/// How an attempt failed: whether any text already reached the sink decides if it may be retried.
struct Failure {
    error: RagError,
    streamed: bool,
    retry_after: Option<Duration>,
}

impl From<RagError> for Failure {
    fn from(error: RagError) -> Self {
        Failure {
            error,
            streamed: false,
            retry_after: None,
        }
    }
}

impl OpenAiAnswerer {
    /// Creates the answerer and its HTTP client, counting tokens with [`CharEstimate`].
    ///
    /// # Errors
    /// [`RagError::InvalidInput`] when `base_url` is not an http(s) URL or `model` is empty.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let url = reqwest::Url::parse(config.base_url.trim()).map_err(|e| {
            RagError::InvalidInput(format!("LLM base URL {:?}: {e}", config.base_url))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RagError::InvalidInput(format!(
                "LLM base URL {:?} must start with http:// or https://",
                config.base_url
            )));
        }
        if config.model.trim().is_empty() {
            return Err(RagError::InvalidInput("LLM model name is empty".into()));
        }
        let base = url.as_str().trim_end_matches('/');
        let endpoint = if base.ends_with("/chat/completions") {
            base.to_owned()
        } else {
            format!("{base}/chat/completions")
        };
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| RagError::InvalidInput(format!("cannot build HTTP client: {e}")))?;
        Ok(OpenAiAnswerer {
            config: Arc::new(config),
            endpoint,
            client,
            counter: Arc::new(CharEstimate),
        })
    }

    /// Uses `counter` instead of [`CharEstimate`] to fit history into the token budget.
    pub fn with_token_counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
        self.counter = counter;
        self
    }

    /// The full chat-completions URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One request: send, check the status, stream the body into `sink`.
    async fn attempt(
        &self,
        body: &ChatRequest<'_>,
        sink: &mut (dyn FnMut(&str) + Send),
    ) -> std::result::Result<String, Failure> {
        let mut request = self.client.post(&self.endpoint).json(body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = tokio::time::timeout(self.config.timeout, request.send())
            .await
            .map_err(|_| self.timeout_error())?
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_failure(response).await);
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            // The server ignored `stream: true` and sent one whole completion.
            let bytes = tokio::time::timeout(self.config.timeout, response.bytes())
                .await
                .map_err(|_| self.timeout_error())?
                .map_err(|e| self.transport_error(&e))?;
            let completion = self.parse_completion(&bytes)?;
            let text = completion.content();
            if !text.is_empty() {
                sink(&text);
            }
            return Ok(text);
        }
        self.stream(response, sink).await
    }

    async fn stream(
        &self,
        response: reqwest::Response,
        sink: &mut (dyn FnMut(&str) + Send),
    ) -> std::result::Result<String, Failure> {
        let mut body = response.bytes_stream();
        let mut decoder = SseDecoder::default();
        let mut text = String::new();
        loop {
            let next = tokio::time::timeout(self.config.timeout, body.next()).await;
            let events = match next {
                Err(_) => return Err(self.interrupted(self.timeout_error(), &text)),
                Ok(Some(Err(e))) => return Err(self.interrupted(self.transport_error(&e), &text)),
                Ok(Some(Ok(bytes))) => decoder.push(&bytes),
                Ok(None) => {
                    // Some servers end without `[DONE]`, or without a final blank line.
                    if let Some(data) = decoder.finish() {
                        self.on_event(&data, &mut text, sink)
                            .map_err(|e| self.interrupted(e.error, &text))?;
                    }
                    return Ok(text);
                }
            };
            for data in &events {
                if data.trim() == "[DONE]" {
                    return Ok(text);
                }
                self.on_event(data, &mut text, sink)
                    .map_err(|e| self.interrupted(e.error, &text))?;
            }
        }
    }

    /// Handles one SSE `data` payload: a chunk with content, an in-stream error, or noise.
    fn on_event(
        &self,
        data: &str,
        text: &mut String,
        sink: &mut (dyn FnMut(&str) + Send),
    ) -> std::result::Result<(), Failure> {
        if data.trim() == "[DONE]" {
            return Ok(());
        }
        let chunk: Completion = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::debug!(%error, data, "ignoring unparseable stream event");
                return Ok(());
            }
        };
        if let Some(error) = &chunk.error {
            return Err(Failure::from(self.llm_error(
                None,
                error_message(error),
                false,
            )));
        }
        let delta = chunk.content();
        if !delta.is_empty() {
            sink(&delta);
            text.push_str(&delta);
        }
        Ok(())
    }

    fn parse_completion(&self, bytes: &[u8]) -> std::result::Result<Completion, Failure> {
        let completion: Completion = serde_json::from_slice(bytes).map_err(|e| {
            self.llm_error(
                None,
                format!("response is not a chat completion: {e}"),
                false,
            )
        })?;
        match &completion.error {
            Some(error) => Err(self.llm_error(None, error_message(error), false).into()),
            None => Ok(completion),
        }
    }

    /// Marks a failure after `text` was partly streamed: it can no longer be retried.
    fn interrupted(&self, error: RagError, text: &str) -> Failure {
        if text.is_empty() {
            return Failure::from(error);
        }
        let message = format!(
            "stream interrupted after {} characters: {error}",
            text.len()
        );
        Failure {
            error: self.llm_error(None, message, false),
            streamed: true,
            retry_after: None,
        }
    }

    async fn status_failure(&self, response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = tokio::time::timeout(self.config.timeout, response.text())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let message = match serde_json::from_str::<Value>(&body) {
            Ok(json) => error_message(&json),
            Err(_) if body.trim().is_empty() => "no error message in the response".to_owned(),
            Err(_) => body.trim().to_owned(),
        };
        let retryable = status == 408 || status == 429 || status >= 500;
        Failure {
            error: self.llm_error(Some(status), truncate(&message), retryable),
            streamed: false,
            retry_after,
        }
    }

    fn llm_error(&self, status: Option<u16>, message: String, retryable: bool) -> RagError {
        RagError::Llm {
            endpoint: self.endpoint.clone(),
            status,
            message,
            retryable,
        }
    }

    fn timeout_error(&self) -> RagError {
        RagError::Timeout {
            endpoint: self.endpoint.clone(),
            after: self.config.timeout,
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> RagError {
        let reason = error_chain(error);
        if error.is_connect() {
            RagError::Unavailable {
                endpoint: self.endpoint.clone(),
                reason,
            }
        } else if error.is_timeout() {
            self.timeout_error()
        } else {
            self.llm_error(None, reason, true)
        }
    }

    fn retry_delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self
            .config
            .retry_backoff
            .saturating_mul(2u32.saturating_pow(retry));
        backoff
            .max(retry_after.unwrap_or_default())
            .min(MAX_RETRY_DELAY)
    }
}

#[async_trait]
impl Answerer for OpenAiAnswerer {
    fn describe(&self) -> String {
        format!("openai:{} at {}", self.config.model, self.endpoint)
    }

    /// Streams the model's answer; retries before the first token on transient failures.
    async fn answer(
        &self,
        request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer> {
        let messages = build_messages(
            request,
            self.config.history_token_budget,
            self.counter.as_ref(),
        );
        let body = ChatRequest {
            model: &self.config.model,
            messages: &messages,
            stream: true,
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
        };
        let mut retry = 0;
        let text = loop {
            match self.attempt(&body, sink).await {
                Ok(text) => break text,
                Err(failure) => {
                    let retryable = !failure.streamed && failure.error.is_retryable();
                    if !retryable || retry >= self.config.max_retries {
                        return Err(failure.error);
                    }
                    let delay = self.retry_delay(retry, failure.retry_after);
                    tracing::warn!(
                        error = %failure.error,
                        ?delay,
                        retry = retry + 1,
                        "retrying LLM request"
                    );
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
            }
        };
        if text.trim().is_empty() {
            return Err(self.llm_error(None, "the model returned an empty answer".into(), false));
        }
        Ok(Answer {
            text,
            sources: request.hits.iter().map(Source::from).collect(),
            fallback: None,
        })
    }
}

/// The message of an error body: `{"error":{"message":..}}`, `{"error":".."}`, `{"message":..}`
/// or `{"detail":..}`, else the JSON itself.
fn error_message(value: &Value) -> String {
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

/// The error and its causes, `outer: inner: root`, so "connection refused" is visible.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(message: &str) -> String {
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

    #[test]
    fn config_validation_and_endpoint() {
        let answerer = OpenAiAnswerer::new(OpenAiConfig::new("http://localhost:11434/v1/", "m"))
            .expect("valid");
        assert_eq!(
            answerer.endpoint(),
            "http://localhost:11434/v1/chat/completions"
        );
        assert!(matches!(
            OpenAiAnswerer::new(OpenAiConfig::new("localhost:11434", "m")),
            Err(RagError::InvalidInput(_))
        ));
        assert!(matches!(
            OpenAiAnswerer::new(OpenAiConfig::new("http://x/v1", " ")),
            Err(RagError::InvalidInput(_))
        ));
        let mut config = OpenAiConfig::new("http://x/v1", "m");
        config.api_key = Some("sk-secret".into());
        assert!(!format!("{config:?}").contains("sk-secret"));
    }

    #[test]
    fn retry_delay_doubles_and_honours_retry_after() {
        let mut config = OpenAiConfig::new("http://x/v1", "m");
        config.retry_backoff = Duration::from_millis(100);
        let answerer = OpenAiAnswerer::new(config).expect("valid");
        assert_eq!(answerer.retry_delay(0, None), Duration::from_millis(100));
        assert_eq!(answerer.retry_delay(2, None), Duration::from_millis(400));
        assert_eq!(
            answerer.retry_delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(answerer.retry_delay(40, None), MAX_RETRY_DELAY);
    }
}
