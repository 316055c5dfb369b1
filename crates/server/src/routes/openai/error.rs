//! Errors in the protocol's shape: `{"error":{"message","type","param","code"}}` with the
//! status codes its clients branch on (their SDKs raise by status: 400 bad request, 401
//! authentication, 404 not found, 413, 429 and 5xx, which they retry, honouring
//! `Retry-After`).
//!
//! `type` is `invalid_request_error` for the client's mistakes and `server_error` for
//! ours; `code` is ragchat's own code (`invalid_input`, `invalid_json`, ...) or the
//! protocol's where it has one (`invalid_api_key`, `model_not_found`).

use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{error_response, ApiError, RETRY_AFTER_SECS};

/// An error of the chat-completions routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAiError {
    status: StatusCode,
    kind: &'static str,
    code: String,
    message: String,
    param: Option<String>,
    retry_after: Option<u64>,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorBody {
    /// What went wrong.
    pub error: OpenAiErrorDetail,
}

/// The `error` object.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenAiErrorDetail {
    /// What happened, for people.
    pub message: String,
    /// `invalid_request_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<String>,
}

impl OpenAiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        OpenAiError {
            status,
            kind,
            code: code.to_string(),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// 400: a field of the request is invalid; `param` names it.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        OpenAiError {
            param: Some(param.to_string()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
        }
    }

    /// 400: the body is not a JSON chat-completions request.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 404: no model by that id.
    pub fn model_not_found(model: &str, available: &[String]) -> Self {
        OpenAiError {
            param: Some("model".to_string()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "model_not_found",
                format!(
                    "the model {model:?} does not exist here; this server offers {}",
                    available
                        .iter()
                        .map(|m| format!("{m:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }

    /// 413: a message or the whole body is over the limit.
    pub fn payload_too_large(param: Option<&str>, message: impl Into<String>) -> Self {
        OpenAiError {
            param: param.map(str::to_string),
            ..Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
        }
    }

    /// 409: the conversation has been edited or regenerated so often that resolving
    /// its branch would take too many reads.
    pub fn too_many_branches(limit: usize) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "too_many_branches",
            format!(
                "this conversation has more than {limit} edited or regenerated branches at one \
                 point; start a new chat, or name the session with the X-Session-Id header"
            ),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body(&self) -> OpenAiErrorBody {
        OpenAiErrorBody {
            error: OpenAiErrorDetail {
                message: self.message.clone(),
                kind: self.kind.to_string(),
                param: self.param.clone(),
                code: Some(self.code.clone()),
            },
        }
    }
}

impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl From<ApiError> for OpenAiError {
    /// Keeps the status and the message; 401 becomes the protocol's `invalid_api_key`;
    /// 429 and 503 keep their `Retry-After`.
    fn from(e: ApiError) -> Self {
        let code = match e.status() {
            StatusCode::UNAUTHORIZED => "invalid_api_key",
            _ => e.code(),
        };
        let mut error = OpenAiError::new(e.status(), code, e.message());
        error.retry_after = e.retry_after();
        if e.status() == StatusCode::SERVICE_UNAVAILABLE && error.retry_after.is_none() {
            error.retry_after = Some(RETRY_AFTER_SECS);
        }
        error
    }
}

impl From<ragchat_memory::MemoryError> for OpenAiError {
    fn from(e: ragchat_memory::MemoryError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ragchat_engine::EngineError> for OpenAiError {
    fn from(e: ragchat_engine::EngineError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<BytesRejection> for OpenAiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return OpenAiError::payload_too_large(
                None,
                format!(
                    "the request body is over the limit of {} bytes; a long conversation can \
                     name its session with X-Session-Id and send only the new message",
                    super::wire::MAX_REQUEST_BYTES
                ),
            );
        }
        OpenAiError::invalid_json(rejection.body_text())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.body(), self.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    use super::*;

    #[test]
    fn api_errors_keep_status_and_take_the_protocol_shape() {
        let e: OpenAiError = ApiError::unauthorized("unknown API key").into();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "invalid_api_key");
        assert_eq!(body["error"]["message"], "unknown API key");
        assert!(body["error"]["param"].is_null());

        let response = OpenAiError::from(ApiError::store_unavailable()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");

        let e = OpenAiError::invalid("temperature", "too hot");
        let body = serde_json::to_value(e.body()).unwrap();
        assert_eq!(body["error"]["param"], "temperature");
        let e: OpenAiError = ApiError::internal("disk on fire").into();
        assert_eq!(
            serde_json::to_value(e.body()).unwrap()["error"]["type"],
            "server_error"
        );
        assert!(!e.message().contains("disk"));
    }
}
