//! What the server answers from: `GET /v1/about`, for the page's new-conversation view.
//!
//! The documents (count, names), the number of indexed passages, a few example
//! questions drawn from the documents, and which answerer runs. Only callers with a key
//! get it, like every `/v1` route; the answerer is described without its endpoint URL
//! (a model name at most). The index does not change while the server runs, so the
//! answer is computed once, off the async threads, and then served from memory.

use axum::extract::State;
use axum::Json;
use ragchat_engine::EngineError;

pub use crate::about::{describe, About, AboutDocument, EXAMPLE_QUESTIONS, MAX_LISTED_DOCUMENTS};
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// What the server answers from: documents, passages, example questions, answerer.
#[utoipa::path(
    get,
    path = "/v1/about",
    tag = "documents",
    responses(
        (status = 200, body = About),
        (status = 401, body = ErrorBody),
        (status = 500, description = "The index could not be read", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn about_get(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<About>, ApiError> {
    let about = state
        .about()
        .get_or_try_init(|| async {
            let engine = state.engine().clone();
            let about = tokio::task::spawn_blocking(move || {
                describe(engine.index(), &engine.answerer().describe())
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::from(EngineError::Rag(e)))?;
            Ok::<_, ApiError>(about)
        })
        .await?;
    Ok(Json(about.clone()))
}
