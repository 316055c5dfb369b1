//! `ApiError`: every failure of the HTTP API, rendered as `{"error":{"code","message"}}`.
//!
//! Client errors carry their own message. Internal errors answer with a generic message
//! and log the cause, so nothing about the store or the LLM endpoint leaks to callers.
//! The extractor wrappers ([`ApiJson`], [`ApiQuery`], [`ApiPath`]) turn axum's own
//! rejections (malformed JSON, a bad query string, an oversized body) into the same
//! format.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

use ragchat_memory::MemoryError;
use ragchat_rag::RagError;
use serde::Serialize;
use utoipa::ToSchema;

use ragchat_engine::EngineError;

/// Seconds a client is asked to wait before retrying when the store is unavailable.
pub const RETRY_AFTER_SECS: u64 = 5;

/// An error response of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` object of an error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code: `invalid_input`, `invalid_json`,
    /// `payload_too_large`, `quota`, `unauthorized`, `not_found`, `store_unavailable`,
    /// `answerer_unavailable`, `search_unavailable`, `internal`, `rate_limited`, `auth_locked`, `timeout`,
    /// `idempotency_key_reused`.
    pub code: String,
    /// What happened, for people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400: the request is malformed or names an invalid id.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }

    /// 400: the body is not the JSON the route expects.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 413: the body or the message is over the limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 413 `quota`: the message would take a session or a user past a storage quota;
    /// nothing was stored.
    pub fn quota(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "quota", message)
    }

    /// 401: no API key, or one that is not known.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: the caller has no session by that name. Another user's session answers
    /// exactly the same way, so callers cannot probe for them.
    pub fn session_not_found(session: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("session {session:?} not found"),
        )
    }

    /// 404 for something else the caller asked for that is not there (a message, a
    /// source of a message).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 404 for a path no route serves.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 503 with `Retry-After`: neither the store nor the local journal can serve this.
    pub fn store_unavailable() -> Self {
        ApiError {
            retry_after: Some(RETRY_AFTER_SECS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the conversation store is unavailable; try again shortly",
            )
        }
    }

    /// 429 with `Retry-After` (whole seconds, at least 1): a rate limit or a lockout.
    pub fn too_many_requests(
        code: &'static str,
        message: impl Into<String>,
        wait: Duration,
    ) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// 503 with `Retry-After`: the request took longer than the server's deadline.
    pub fn timeout(limit: Duration) -> Self {
        ApiError {
            retry_after: Some(RETRY_AFTER_SECS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s; a chat turn still finishes and is stored \
                     (retry with the same Idempotency-Key to get it)",
                    limit.as_secs_f64()
                ),
            )
        }
    }

    /// 422: an `Idempotency-Key` already names another turn.
    pub fn idempotency_key_reused(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            message,
        )
    }

    /// 501 `search_unavailable`: the store cannot search (no durable tier); the
    /// message says what would.
    pub fn search_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "search_unavailable", message)
    }

    /// 500 with a generic message; `cause` is logged, never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has the details",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Seconds the client is told to wait before retrying (429 and 503), if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// What happened, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status, self.body(), self.retry_after)
    }
}

/// An error response in either protocol's body: `Retry-After` when the caller may retry,
/// `WWW-Authenticate: Bearer` on a 401.
pub(crate) fn error_response(
    status: StatusCode,
    body: impl Serialize,
    retry_after: Option<u64>,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

impl From<MemoryError> for ApiError {
    fn from(e: MemoryError) -> Self {
        match e {
            MemoryError::InvalidInput(message) => ApiError::invalid_input(message),
            // The memory crate names the session in its own words; ours never says whose.
            MemoryError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            MemoryError::Unavailable { .. } => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::store_unavailable()
            }
            MemoryError::Quota(message) => ApiError::quota(message),
            MemoryError::Unsupported(message) => ApiError::search_unavailable(message),
            // Corrupt data, a failing store, and whatever a later version adds: logged, 500.
            _ => ApiError::internal(e),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Memory(e) => e.into(),
            EngineError::Rag(RagError::InvalidInput(message)) => ApiError::invalid_input(message),
            EngineError::Rag(e) => {
                tracing::warn!(error = %e, "the answerer failed");
                let retryable = e.is_retryable();
                ApiError {
                    retry_after: retryable.then_some(RETRY_AFTER_SECS),
                    ..ApiError::new(
                        if retryable {
                            StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            StatusCode::BAD_GATEWAY
                        },
                        "answerer_unavailable",
                        "the answer could not be produced; nothing was stored, try again later",
                    )
                }
            }
            _ => ApiError::internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::payload_too_large(format!(
                "request body is too large: {}",
                rejection.body_text()
            ));
        }
        ApiError::invalid_json(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid_input(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid_input(rejection.body_text())
    }
}

/// `axum::Json`, rejecting in our error format (400 for malformed JSON, 413 for a body
/// over the limit).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query`, rejecting in our error format.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path`, rejecting in our error format.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_errors_map_to_statuses() {
        let e: ApiError = MemoryError::InvalidInput("bad".into()).into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_REQUEST, "invalid_input")
        );
        let e: ApiError = MemoryError::Unavailable {
            store: "redis://secret-host".into(),
            reason: "down".into(),
        }
        .into();
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message().contains("secret-host"), "{e}");
        let e: ApiError = MemoryError::Quota("session \"s\" would hold 9 bytes".into()).into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::PAYLOAD_TOO_LARGE, "quota")
        );
        let e: ApiError = MemoryError::Unsupported("search needs a durable store".into()).into();
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::NOT_IMPLEMENTED, "search_unavailable")
        );
        assert!(e.message().contains("durable"), "{e}");
        let e: ApiError = MemoryError::Corrupt("sector 42 unreadable".into()).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message().contains("sector 42"), "{e}");
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let response = ApiError::store_unavailable().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let response = ApiError::unauthorized("no key").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
