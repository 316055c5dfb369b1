//! One request to the endpoint: send it, check the status, stream the body into the sink, and
//! classify what went wrong (retryable or not, and whether text already reached the sink).

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::wire::{error_message, truncate, ChatRequest, Completion};
use super::OpenAiAnswerer;
use crate::answer::sse::SseDecoder;
use crate::error::RagError;

/// How an attempt failed: whether any text already reached the sink decides if it may be retried.
pub(super) struct Failure {
    pub(super) error: RagError,
    pub(super) streamed: bool,
    pub(super) retry_after: Option<Duration>,
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
    /// One request: send, check the status, stream the body into `sink`.
    pub(super) async fn attempt(
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
            .map_err(|e| self.transport_error(e))?;
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
                .map_err(|e| self.transport_error(e))?;
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
                Ok(Some(Err(e))) => return Err(self.interrupted(self.transport_error(e), &text)),
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

    pub(super) fn llm_error(
        &self,
        status: Option<u16>,
        message: String,
        retryable: bool,
    ) -> RagError {
        RagError::Llm {
            endpoint: self.shown.clone(),
            status,
            message,
            retryable,
        }
    }

    fn timeout_error(&self) -> RagError {
        RagError::Timeout {
            endpoint: self.shown.clone(),
            after: self.config.timeout,
        }
    }

    fn transport_error(&self, error: reqwest::Error) -> RagError {
        let (connect, timeout) = (error.is_connect(), error.is_timeout());
        // reqwest names the URL in its message, query string included: drop it (the
        // error names the redacted endpoint instead).
        let reason = error_chain(&error.without_url());
        if connect {
            RagError::Unavailable {
                endpoint: self.shown.clone(),
                reason,
            }
        } else if timeout {
            self.timeout_error()
        } else {
            self.llm_error(None, reason, true)
        }
    }
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
