//! [`OpenAiAnswerer`]: answers with any OpenAI-compatible chat-completions endpoint, streamed.
//!
//! - this file: the configuration, the answerer, retries around attempts
//! - `wire`: the request and completion JSON as servers send it, error bodies
//! - `stream`: one attempt: send, stream the body into the sink, classify failures

mod stream;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::endpoint::Endpoint;
use super::prompt::{build_messages, CharEstimate, TokenCounter};
use super::{Answer, AnswerOptions, AnswerRequest, Answerer, Source};
use crate::error::{RagError, Result};
use wire::ChatRequest;

/// Upper bound for one retry delay, whatever the server's `Retry-After` says.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Settings of an [`OpenAiAnswerer`]. Built by the caller (the CLI maps its flags and environment
/// onto it; this crate reads no environment variables).
#[derive(Clone, PartialEq)]
pub struct OpenAiConfig {
    /// API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1` (Ollama);
    /// `/chat/completions` is appended to its path unless already there, keeping the
    /// query (`?api-version=...`). User and password in it go out as basic auth.
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
            .field("base_url", &ragchat_redact::redact_url(&self.base_url))
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
/// numbered sources, the question. The returned [`Answer::sources`] are all hits, then all
/// recalled messages, in that numbering, so the model's `[n]` refers to `sources[n - 1]`. Create once and clone: the HTTP
/// connection pool is shared.
#[derive(Clone)]
pub struct OpenAiAnswerer {
    config: Arc<OpenAiConfig>,
    endpoint: String,
    /// The endpoint as errors, logs and `describe` show it (secrets hidden).
    shown: String,
    client: reqwest::Client,
    counter: Arc<dyn TokenCounter>,
}

impl OpenAiAnswerer {
    /// Creates the answerer and its HTTP client, counting tokens with [`CharEstimate`].
    ///
    /// The endpoint is the base URL with `/chat/completions` appended to its path,
    /// keeping its query (`https://h/v1?api-version=X` calls
    /// `https://h/v1/chat/completions?api-version=X`). User and password in the URL go
    /// out as basic auth. Wherever the endpoint is shown (errors, logs,
    /// [`Answerer::describe`]) its secrets are hidden by [`ragchat_redact::redact_url`].
    ///
    /// # Errors
    /// [`RagError::InvalidInput`] when `base_url` is not an http(s) URL or `model` is empty.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let endpoint = Endpoint::for_base(&config.base_url)?;
        if config.model.trim().is_empty() {
            return Err(RagError::InvalidInput("LLM model name is empty".into()));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| RagError::InvalidInput(format!("cannot build HTTP client: {e}")))?;
        Ok(OpenAiAnswerer {
            config: Arc::new(config),
            endpoint: endpoint.url,
            shown: endpoint.shown,
            client,
            counter: Arc::new(CharEstimate),
        })
    }

    /// Uses `counter` instead of [`CharEstimate`] to fit history into the token budget.
    pub fn with_token_counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
        self.counter = counter;
        self
    }

    /// The full chat-completions URL requests go to (with its secrets: do not show it;
    /// [`Answerer::describe`] shows it redacted).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The wait before retry `retry` (0 for the first): the backoff doubled for each retry,
    /// at least the server's `Retry-After`, at most [`MAX_RETRY_DELAY`].
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
        format!("openai:{} at {}", self.config.model, self.shown)
    }

    fn upstream_model(&self) -> Option<String> {
        Some(self.config.model.clone())
    }

    /// Streams the model's answer; retries before the first token on transient failures.
    async fn answer(
        &self,
        request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Answer> {
        self.answer_with(request, &AnswerOptions::default(), sink)
            .await
    }

    /// As [`OpenAiAnswerer::answer`]; the request's `temperature` and `max_tokens` take
    /// the place of the configured ones.
    async fn answer_with(
        &self,
        request: &AnswerRequest,
        options: &AnswerOptions,
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
            temperature: options.temperature.or(self.config.temperature),
            max_tokens: options.max_tokens.or(self.config.max_tokens),
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
            sources: request
                .hits
                .iter()
                .map(Source::from)
                .chain(request.recalled.iter().map(Source::from))
                .collect(),
            fallback: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut config = OpenAiConfig::new("http://u:pw-secret@x/v1", "m");
        config.api_key = Some("sk-secret".into());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("sk-secret") && !shown.contains("pw-secret"),
            "{shown}"
        );
    }

    #[test]
    fn the_endpoint_is_described_redacted() {
        let answerer = OpenAiAnswerer::new(OpenAiConfig::new("http://u:p4ss@h/v1?key=s3cret", "m"))
            .expect("valid");
        assert_eq!(
            answerer.endpoint(),
            "http://u:p4ss@h/v1/chat/completions?key=s3cret"
        );
        assert_eq!(
            answerer.describe(),
            "openai:m at http://***@h/v1/chat/completions?key=***"
        );
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
