//! `EngineError`: why a chat turn failed, as one of the two crates it drives reported it.
//!
//! Interfaces map it once: the HTTP API to a status (`ApiError: From<EngineError>` in the
//! server), the CLI to a message and an exit code.

use ragchat_memory::MemoryError;
use ragchat_rag::RagError;

/// Why a turn failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Conversation memory refused or failed (bad input, store and journal unavailable).
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Retrieval or the answerer failed (e.g. the LLM endpoint is unreachable).
    #[error(transparent)]
    Rag(#[from] RagError),
}

impl EngineError {
    /// Whether the caller's input was at fault (nothing was written).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, EngineError::Memory(MemoryError::InvalidInput(_)))
            || matches!(self, EngineError::Rag(RagError::InvalidInput(_)))
    }

    /// Whether the same turn may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Memory(e) => e.is_retryable(),
            EngineError::Rag(e) => e.is_retryable(),
        }
    }
}
