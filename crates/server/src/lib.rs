//! ragchat-server: the application layer.
//!
//! - [`engine`]: `ChatEngine`, one chat turn end to end: conversation memory, history-aware
//!   retrieval, a (streamed) answer, and the atomic append of the question and the answer.
//!   The CLI's `chat` and the HTTP API both drive it.

#![warn(missing_docs)]

pub mod engine;

pub use engine::{ChatEngine, EngineConfig, EngineError, TurnOutcome, TurnTimings};
