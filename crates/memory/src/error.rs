//! The one error type of the memory crate.

use std::fmt;

/// Result alias used throughout `ragchat-memory`.
pub type Result<T, E = MemoryError> = std::result::Result<T, E>;

/// Everything that can go wrong in conversation memory.
///
/// Variants are meant to be branched on: `InvalidInput` is the caller's fault and
/// nothing was written; `Quota` means the append would break a storage limit and
/// nothing was written; `Unavailable` means the store could not be reached and the
/// same call may succeed later; `Corrupt` means stored data could not be decoded; `Unsupported` means the
/// store cannot do it at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The request was rejected before anything was written (bad id, empty or
    /// oversized content, malformed store URL, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The session (or another named thing) does not exist.
    #[error("not found: {0}")]
    NotFound(String),

    /// The store could not be reached or did not answer in time.
    #[error("store unavailable ({store}): {reason}")]
    Unavailable {
        /// Which store, as a redacted URL.
        store: String,
        /// What went wrong, for people.
        reason: String,
    },

    /// Stored data could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),

    /// The append would break a quota (bytes per session, sessions or bytes per user);
    /// nothing was written.
    #[error("quota exceeded: {0}")]
    Quota(String),

    /// The store cannot do this at all (search on a store without a durable tier);
    /// the message says what would.
    #[error("not supported: {0}")]
    Unsupported(String),

    /// The store answered with an error that retrying will not fix.
    #[error("store error ({store}): {reason}")]
    Storage {
        /// Which store, as a redacted URL.
        store: String,
        /// The store's own message.
        reason: String,
    },
}

impl MemoryError {
    /// Whether the same call may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MemoryError::Unavailable { .. })
    }

    pub(crate) fn invalid(msg: impl fmt::Display) -> Self {
        MemoryError::InvalidInput(msg.to_string())
    }
}
