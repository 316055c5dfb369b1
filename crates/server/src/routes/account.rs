//! The caller's data as a whole: export every session, or erase all of it.

use axum::extract::State;
use axum::Json;
use ragchat_memory::manager::UserExport;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::schema;
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
        (status = 200, body = schema::UserExport),
        (status = 401, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<UserExport>, ApiError> {
    Ok(Json(state.memory().export(&caller.user).await?))
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
