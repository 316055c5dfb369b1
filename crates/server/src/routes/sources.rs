//! The passage an answer cites: `GET /v1/sessions/{session}/messages/{message_id}/sources/{n}`.
//!
//! An answer's `[n]` refers to `sources[n-1]`, which names a document path and a line
//! range; this route returns the text at that place from the index, so a reader can
//! check the answer against its source. Only the session's owner can ask: the session
//! key is built from the authenticated user, so another user's session, message or
//! source answers 404 exactly like one that does not exist. The passage is read from
//! the index as it is now (a source that is a recalled message of the user's conversations
//! is not a passage: the route says where to read it); when the documents changed so that nothing is left at that
//! place, the route answers 404 and says so.

use axum::extract::State;
use axum::Json;
use ragchat_memory::{MessageId, SessionKey};
use ragchat_rag::CitedPart;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ErrorBody};
use crate::state::AppState;
use ragchat_engine::EngineError;

/// A cited passage, as the index holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CitedPassage {
    /// The citation's number in the answer (`[n]`).
    pub n: usize,
    /// Path of the document, relative to the docs folder.
    pub path: String,
    /// The document's title.
    pub title: String,
    /// Heading path of the passage's section (`Title > Section`).
    pub heading: String,
    /// First line of the passage in the document (1-based).
    pub line_start: u32,
    /// Last line (inclusive).
    pub line_end: u32,
    /// The passage's text.
    pub text: String,
}

/// The passage that source `n` (1-based, as `[n]` in the answer) of a message cites.
#[utoipa::path(
    get,
    path = "/v1/sessions/{session}/messages/{message_id}/sources/{n}",
    tag = "sessions",
    params(
        ("session" = String, Path, description = "Session id"),
        ("message_id" = String, Path, format = "uuid", description = "Id of the answer"),
        ("n" = usize, Path, minimum = 1, description = "Citation number, as `[n]` in the answer"),
    ),
    responses(
        (status = 200, body = CitedPassage),
        (status = 400, description = "Invalid session id, message id or number", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such session, message or source of the caller's, \
            or the documents no longer hold the passage", body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn source_get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((session, message_id, n)): ApiPath<(String, String, usize)>,
) -> Result<Json<CitedPassage>, ApiError> {
    let key = SessionKey::new(caller.user, session)?;
    let message_id: MessageId = message_id.parse()?;
    if n == 0 {
        return Err(ApiError::invalid_input(
            "sources are numbered from 1, as [1] in the answer",
        ));
    }
    let history = state.memory().history_confirmed(&key).await?;
    if history.is_empty() {
        return Err(ApiError::session_not_found(key.session()));
    }
    let message = history
        .iter()
        .find(|m| m.id == message_id)
        .ok_or_else(|| ApiError::not_found(format!("message {message_id} not found")))?;
    let source = message.sources.get(n - 1).ok_or_else(|| {
        ApiError::not_found(format!(
            "message {message_id} has {} source(s); there is no [{n}]",
            message.sources.len()
        ))
    })?;
    if let Some(conversation) = &source.conversation {
        return Err(ApiError::not_found(format!(
            "source [{n}] is not a document passage but a message of {}: read it at \
             /v1/sessions/{}/messages?after={}",
            conversation.label(),
            conversation.session,
            conversation.seq.saturating_sub(1)
        )));
    }
    let part = match (
        source.line_start,
        source.line_end,
        source.heading.as_deref(),
    ) {
        (Some(start), Some(end), _) => CitedPart::Lines(start..=end),
        (_, _, Some(heading)) => CitedPart::Heading(heading),
        _ => {
            return Err(ApiError::not_found(format!(
                "source [{n}] names no place in {}",
                source.path
            )))
        }
    };
    let passage = state
        .engine()
        .index()
        .passage(&source.path, &part)
        .map_err(EngineError::Rag)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the indexed documents no longer hold source [{n}] ({}); they changed since the answer",
                source.path
            ))
        })?;
    Ok(Json(CitedPassage {
        n,
        path: passage.path,
        title: passage.title,
        heading: passage.heading,
        line_start: passage.line_start,
        line_end: passage.line_end,
        text: passage.text,
    }))
}
