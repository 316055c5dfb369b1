//! What the server answers from: `GET /v1/about`, for the page's new-conversation view.
//!
//! The documents (count, names), the number of indexed passages, a few example
//! questions drawn from the documents, and which answerer runs. Only callers with a key
//! get it, like every `/v1` route; the answerer is described without its endpoint URL
//! (a model name at most). The index does not change while the server runs, so the
//! answer is computed once, off the async threads, and then served from memory.

use axum::extract::State;
use axum::Json;
use ragchat_rag::Index;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::engine::EngineError;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Most documents listed by name; `document_count` still counts them all.
pub const MAX_LISTED_DOCUMENTS: usize = 200;
/// Example questions offered.
pub const EXAMPLE_QUESTIONS: usize = 3;

/// What the server answers from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct About {
    /// Documents indexed.
    pub document_count: usize,
    /// Passages (chunks) indexed.
    pub chunk_count: usize,
    /// The documents by path, at most 200 (see `documents_truncated`).
    pub documents: Vec<AboutDocument>,
    /// Whether more documents are indexed than `documents` lists.
    pub documents_truncated: bool,
    /// Questions the documents answer, to start a conversation with.
    pub example_questions: Vec<String>,
    /// How answers are produced: `extractive` (offline), or the LLM's model
    /// (`openai:MODEL`); never the endpoint URL.
    pub answerer: String,
}

/// One indexed document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AboutDocument {
    /// Path relative to the docs folder.
    pub path: String,
    /// The document's title.
    pub title: String,
    /// Passages it was split into.
    pub chunks: usize,
}

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

/// Builds the description of `index`.
///
/// # Errors
/// [`ragchat_rag::RagError::Index`] when the index cannot be read.
pub fn describe(index: &Index, answerer: &str) -> ragchat_rag::Result<About> {
    let documents = index.documents()?;
    let document_count = documents.len();
    Ok(About {
        document_count,
        chunk_count: index.num_chunks(),
        documents: documents
            .into_iter()
            .take(MAX_LISTED_DOCUMENTS)
            .map(|d| AboutDocument {
                path: d.path,
                title: d.title,
                chunks: d.chunks,
            })
            .collect(),
        documents_truncated: document_count > MAX_LISTED_DOCUMENTS,
        example_questions: ragchat_rag::example_questions(index, EXAMPLE_QUESTIONS),
        answerer: without_endpoint(answerer),
    })
}

/// An answerer's description without the endpoint it calls: `describe()` may read
/// `openai:MODEL at URL`, and the URL (a host inside the operator's network, perhaps
/// with a path that carries a token) is none of the caller's business.
fn without_endpoint(description: &str) -> String {
    description
        .split(" at ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_left_out_of_the_answerer() {
        assert_eq!(without_endpoint("extractive"), "extractive");
        assert_eq!(
            without_endpoint("openai:llama3.2 at http://10.0.0.7:11434/v1"),
            "openai:llama3.2"
        );
    }
}
