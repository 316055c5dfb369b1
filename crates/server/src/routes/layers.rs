//! Middleware every response passes through: the per-request deadline of
//! [`HttpLimits::request_timeout`] (see `crate::limits` for the other timeouts) and the
//! headers that keep shared caches away from people's conversations.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
#[cfg(doc)]
use crate::limits::HttpLimits;
use crate::state::AppState;

/// Answers `503 timeout` for a request whose response has not started within
/// [`HttpLimits::request_timeout`].
pub async fn request_deadline(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config().limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            state.metrics().edge().request_timeout();
            ApiError::timeout(limit).into_response()
        }
    }
}

/// Adds `X-Content-Type-Options: nosniff` and `Cache-Control: no-store` unless the
/// response set its own.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
