//! [`RagError`]: every way this crate can fail, classified so callers can branch on it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout `ragchat-rag`.
pub type Result<T, E = RagError> = std::result::Result<T, E>;

/// Errors of corpus loading, indexing, retrieval and answering.
///
/// Match on the variant to decide what to tell the user; call [`RagError::is_retryable`] to decide
/// whether trying the same operation again later may succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RagError {
    /// The caller passed something unusable (an empty model name, a corpus path that is not a
    /// folder).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The search index failed (corrupt files, locked by another writer, disk full).
    #[error("search index: {message}")]
    Index {
        /// What went wrong, from tantivy or from our manifest handling.
        message: String,
        /// Whether the condition is transient (another process holds the writer lock).
        retryable: bool,
    },

    /// The LLM endpoint answered with an error, or with something that is not a chat completion.
    #[error("LLM endpoint {endpoint}: {}{message}", http_prefix(*status))]
    Llm {
        /// The endpoint URL that was called, its secrets hidden.
        endpoint: String,
        /// The HTTP status, when the failure was an HTTP error response.
        status: Option<u16>,
        /// The error message from the response body, or a description of the protocol problem.
        message: String,
        /// Whether the same request may succeed later (rate limits, overload).
        retryable: bool,
    },

    /// The LLM endpoint could not be reached at all (connection refused, DNS, TLS).
    #[error("LLM endpoint {endpoint} is unreachable: {reason}")]
    Unavailable {
        /// The endpoint URL that was called, its secrets hidden.
        endpoint: String,
        /// Why the connection failed.
        reason: String,
    },

    /// The LLM endpoint did not respond in time.
    #[error("LLM endpoint {endpoint} timed out after {after:?}")]
    Timeout {
        /// The endpoint URL that was called, its secrets hidden.
        endpoint: String,
        /// How long we waited.
        after: Duration,
    },
}

fn http_prefix(status: Option<u16>) -> String {
    status.map(|s| format!("HTTP {s}: ")).unwrap_or_default()
}

impl RagError {
    /// Whether retrying the same operation later may succeed.
    ///
    /// True for unreachable or slow endpoints, rate limits and server overload, a busy index lock
    /// and interrupted I/O; false for bad input, corrupt data and client errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            RagError::InvalidInput(_) => false,
            RagError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            RagError::Index { retryable, .. } | RagError::Llm { retryable, .. } => *retryable,
            RagError::Unavailable { .. } | RagError::Timeout { .. } => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        RagError::Io {
            path: path.into(),
            source,
        }
    }
}

impl From<tantivy::TantivyError> for RagError {
    fn from(error: tantivy::TantivyError) -> Self {
        let retryable = matches!(error, tantivy::TantivyError::LockFailure(..));
        RagError::Index {
            message: error.to_string(),
            retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_errors() {
        let unavailable = RagError::Unavailable {
            endpoint: "http://127.0.0.1:1/v1".into(),
            reason: "connection refused".into(),
        };
        assert!(unavailable.is_retryable());
        assert!(!RagError::InvalidInput("empty".into()).is_retryable());
        let rate_limited = RagError::Llm {
            endpoint: "e".into(),
            status: Some(429),
            message: "slow down".into(),
            retryable: true,
        };
        assert!(rate_limited.is_retryable());
        assert_eq!(
            rate_limited.to_string(),
            "LLM endpoint e: HTTP 429: slow down"
        );
        let denied = io::Error::new(io::ErrorKind::PermissionDenied, "no");
        assert!(!RagError::io("/x", denied).is_retryable());
    }
}
