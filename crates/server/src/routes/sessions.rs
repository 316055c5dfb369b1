//! The caller's sessions: list them, read a session's messages and stats, delete one.
//!
//! Every session key is built from the authenticated user, so another user's session
//! is simply not there: it answers 404 exactly like a session that never existed.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ragchat_memory::{Message, MessageId, SessionKey, SessionStats};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::openapi::schema;
use crate::state::AppState;
use crate::titles::ListedSession;

/// Messages returned by one page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 1000;
/// Largest accepted `limit`.
pub const MAX_PAGE: usize = 10_000;

/// The caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Most recent activity first, each titled by its first question.
    pub sessions: Vec<ListedSession>,
}

/// A page of a session's messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Messages in conversation order.
    #[schema(value_type = Vec<schema::Message>)]
    pub messages: Vec<Message>,
    /// Whether more messages follow the last one returned (ask again with
    /// `after` = its id).
    pub has_more: bool,
}

/// Paging of `GET /v1/sessions/{session}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// Only messages after the one with this id.
    #[param(format = "uuid")]
    pub after: Option<String>,
    /// At most this many messages (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// Lists the caller's sessions.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "sessions",
    responses(
        (status = 200, body = SessionList),
        (status = 401, body = ErrorBody),
        (status = 503, description = "Store unavailable (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sessions_list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.memory().list_sessions(&caller.user).await?;
    let sessions = state
        .titles()
        .attach(state.memory(), &caller.user, sessions)
        .await;
    Ok(Json(SessionList { sessions }))
}

/// Reads a session's messages, oldest first.
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/messages",
    tag = "sessions",
    params(("session" = String, Path, description = "Session id"), MessagesQuery),
    responses(
        (status = 200, body = MessagePage),
        (status = 400, description = "Invalid session id, `after` or `limit`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The caller has no such session", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn messages_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session): ApiPath<String>,
    ApiQuery(query): ApiQuery<MessagesQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let key = SessionKey::new(caller.user, session)?;
    let after = query
        .after
        .as_deref()
        .map(str::parse::<MessageId>)
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let history = state.memory().history_confirmed(&key).await?;
    if history.is_empty() {
        return Err(ApiError::session_not_found(key.session()));
    }
    let start = match after {
        None => 0,
        // Position when the message is there; otherwise by id, which is time-ordered.
        Some(id) => history
            .iter()
            .position(|m| m.id == id)
            .map(|p| p + 1)
            .unwrap_or_else(|| history.iter().take_while(|m| m.id <= id).count()),
    };
    let messages: Vec<Message> = history.iter().skip(start).take(limit).cloned().collect();
    let has_more = start + messages.len() < history.len();
    Ok(Json(MessagePage { messages, has_more }))
}

/// A session's figures: message count, bytes, TTL remaining, timestamps, mode.
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/stats",
    tag = "sessions",
    params(("session" = String, Path, description = "Session id")),
    responses(
        (status = 200, body = schema::SessionStats),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn session_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session): ApiPath<String>,
) -> Result<Json<SessionStats>, ApiError> {
    let key = SessionKey::new(caller.user, session)?;
    match state.memory().stats(&key).await? {
        Some(stats) => Ok(Json(stats)),
        None => Err(ApiError::session_not_found(key.session())),
    }
}

/// Deletes a session from the store, the journal and every cache of this server.
#[utoipa::path(
    delete,
    path = "/v1/sessions/{session}",
    tag = "sessions",
    params(("session" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn session_delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let key = SessionKey::new(caller.user, session)?;
    if state.memory().delete(&key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::session_not_found(key.session()))
    }
}
