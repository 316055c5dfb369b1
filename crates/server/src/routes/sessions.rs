//! The caller's sessions: list them (paged), read a session's messages (paged) and
//! stats, rename one, delete one.
//!
//! Every session key is built from the authenticated user, so another user's session
//! is simply not there: it answers 404 exactly like a session that never existed.
//! Every read is one bounded store call: a page of messages is at most `limit`
//! messages and [`PAGE_BYTES`]; a page of sessions at most `limit` sessions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ragchat_memory::{
    ListCursor, Message, PageCursor, ReadLimit, SessionKey, SessionStats, SessionSummary,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;

/// Messages returned by one page when `limit` is not given.
pub const DEFAULT_PAGE: usize = 1000;
/// Largest accepted `limit` of a message page.
pub const MAX_PAGE: usize = 10_000;
/// Most bytes of messages one page carries (it stops after the message that reaches them).
pub const PAGE_BYTES: u64 = ragchat_memory::manager::DEFAULT_PAGE_BYTES;
/// Sessions returned by one page of the list when `limit` is not given.
pub const DEFAULT_LIST_PAGE: usize = 100;
/// Largest accepted `limit` of a session list page.
pub const MAX_LIST_PAGE: usize = 1000;

/// A page of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Most recent activity first, each with its title (the one given, else its first
    /// question).
    pub sessions: Vec<SessionSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<ListCursor>,
}

/// The body of `PATCH /v1/sessions/{session}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionPatch {
    /// The new title (trimmed; 1 to 200 characters, one line), or `null` to clear the
    /// given title: the conversation is then titled by its first question again.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = true)]
    pub title: Option<Option<String>>,
}

/// A field that is there, `null` included (`Some(None)`); an absent one stays `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Paging of `GET /v1/sessions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// At most this many sessions (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of a session's messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Messages in conversation order.
    #[schema(value_type = Vec<ragchat_memory::Message>)]
    pub messages: Vec<Message>,
    /// Whether more messages follow this page (ask again with `after` = `next_cursor`).
    pub has_more: bool,
    /// Where the next page starts: pass it as `after`. Also after the last page, to
    /// ask later for what was added since; `null` for an empty or partial page.
    #[schema(value_type = Option<String>)]
    pub next_cursor: Option<PageCursor>,
    /// True when the store was unreachable and this is what this server kept (its
    /// cache and local journal): older messages may be missing.
    pub partial: bool,
}

/// Paging of `GET /v1/sessions/{session}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesQuery {
    /// The `next_cursor` of the previous page: only messages after it.
    pub after: Option<String>,
    /// At most this many messages (default 1000); a page also stops once it holds
    /// 1 MiB of messages.
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
}

/// Lists the caller's sessions, one page at a time.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    tag = "sessions",
    params(SessionsQuery),
    responses(
        (status = 200, body = SessionList),
        (status = 400, description = "Invalid `limit` or `cursor`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 503, description = "Store unavailable (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn sessions_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<SessionsQuery>,
) -> Result<Json<SessionList>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_PAGE);
    if !(1..=MAX_LIST_PAGE).contains(&limit) {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {MAX_LIST_PAGE}, got {limit}"
        )));
    }
    let cursor = query
        .cursor
        .as_deref()
        .map(str::parse::<ListCursor>)
        .transpose()?;
    let page = state
        .memory()
        .list_page(&caller.user, cursor.as_ref(), limit)
        .await?;
    let sessions = state
        .titles()
        .attach(state.memory(), &caller.user, page.sessions)
        .await;
    Ok(Json(SessionList {
        sessions,
        next_cursor: page.next,
    }))
}

/// Reads a session's messages, oldest first, one page at a time.
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
        (status = 503, description = "Store unavailable and this server kept nothing of the \
            session (see Retry-After)", body = ErrorBody),
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
        .map(str::parse::<PageCursor>)
        .transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_input(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let page = state
        .memory()
        .page(&key, after, ReadLimit::new(limit, PAGE_BYTES))
        .await?;
    match page {
        Some(page) if !(page.messages.is_empty() && after.is_none()) => Ok(Json(MessagePage {
            messages: page.messages,
            has_more: page.has_more,
            next_cursor: page.next_cursor,
            partial: page.partial,
        })),
        _ => Err(ApiError::session_not_found(key.session())),
    }
}

/// A session's figures: message count, bytes, TTL remaining, timestamps, mode.
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/stats",
    tag = "sessions",
    params(("session" = String, Path, description = "Session id")),
    responses(
        (status = 200, body = ragchat_memory::SessionStats),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 503, description = "Store unavailable and this server kept nothing of the \
            session (see Retry-After)", body = ErrorBody),
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

/// Renames a session: sets the title the list shows, or clears it back to the first
/// question. Neither refreshes the session's TTL nor counts as activity.
#[utoipa::path(
    patch,
    path = "/v1/sessions/{session}",
    tag = "sessions",
    params(("session" = String, Path, description = "Session id")),
    request_body = SessionPatch,
    responses(
        (status = 200, description = "The session as the list shows it", body = SessionSummary),
        (status = 400, description = "Invalid session id, body or title", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The caller has no such session", body = ErrorBody),
        (status = 503, description = "Store unavailable (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn session_rename(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session): ApiPath<String>,
    ApiJson(patch): ApiJson<SessionPatch>,
) -> Result<Json<SessionSummary>, ApiError> {
    let key = SessionKey::new(caller.user, session)?;
    let Some(title) = patch.title else {
        return Err(ApiError::invalid_input(
            "the body needs a title: a string, or null to clear it",
        ));
    };
    let memory = state.memory();
    if !memory.rename(&key, title.as_deref()).await? {
        return Err(ApiError::session_not_found(key.session()));
    }
    let Some(stats) = memory.stats(&key).await? else {
        return Err(ApiError::session_not_found(key.session()));
    };
    let summary = SessionSummary {
        session: stats.session,
        message_count: stats.message_count,
        bytes: stats.bytes,
        created_at: stats.created_at,
        updated_at: stats.updated_at,
        ttl_remaining_secs: stats.ttl_remaining_secs,
        title: stats.title,
        tier: None,
    };
    let mut titled = state
        .titles()
        .attach(memory, key.user(), vec![summary])
        .await;
    titled
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::session_not_found(key.session()))
}
