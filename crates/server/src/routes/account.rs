//! The caller's data as a whole: export every session, or erase all of it.
//!
//! The export is streamed: the memory layer reads it page by page and the body sends
//! each piece as it comes, so a large export neither loads the store nor sits in this
//! server's RAM. Only the first page is read before the status is sent (an unreachable
//! store is a clean 503); a failure later cuts the body short (logged), which a client
//! sees as JSON that does not parse.

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// What `DELETE /v1/me` erased.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    /// The caller.
    pub user: String,
    /// Sessions deleted from the store and the journal.
    pub deleted_sessions: usize,
}

/// Every session of the caller with its full history (data portability).
#[utoipa::path(
    get,
    path = "/v1/export",
    tag = "account",
    responses(
        (status = 200, body = ragchat_memory::manager::UserExport),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn export(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let pieces = state.memory().export_stream(&caller.user).await?;
    let user = caller.user;
    let body = pieces.map(move |piece| {
        piece.map_err(|e| {
            tracing::warn!(%user, error = %e, "the export stopped before its end");
            std::io::Error::other(e.to_string())
        })
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// Erases every session of the caller from the store, the local journal and the caches.
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "account",
    responses(
        (status = 200, body = Erased),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn me_delete(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Erased>, ApiError> {
    let deleted_sessions = state.memory().delete_user(&caller.user).await?;
    Ok(Json(Erased {
        user: caller.user,
        deleted_sessions,
    }))
}
