//! What the server answers from (`GET /v1/about`): the documents (count, names), the
//! number of indexed passages, a few example questions drawn from the documents, and
//! which answerer runs, described without its endpoint URL (a model name at most).
//! Computed once per server (the index does not change while it runs); the route is
//! `routes::about`.

use ragchat_rag::Index;
use serde::Serialize;
use utoipa::ToSchema;

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
