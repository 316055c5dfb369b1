//! ragchat-engine: the application core, one chat turn end to end over conversation
//! memory (`ragchat-memory`) and documents (`ragchat-rag`). No HTTP: the terminal chat
//! and the HTTP API (`ragchat-server`) are thin adapters over it.
//!
//! - [`engine`]: `ChatEngine` and `EngineConfig`; a turn reads the history, retrieves
//!   with it, streams the answer and appends question and answer atomically.
//! - [`supplied`]: a turn over a conversation the client resends (OpenAI's protocol).
//! - [`history`]: the one conversion from stored messages to the history retrieval and
//!   answerers take, and the one token-budget policy (which recent messages fit).
//! - [`input`]: the checks a message passes before any work, in the words users see.
//! - [`outcome`]: what a turn produced and where its time went (interfaces record
//!   metrics from it; the engine records none).
//! - [`recall`]: earlier messages matching the question join the turn's context.
//! - [`welcome`]: the greeting of a resumed conversation.
//! - [`error`]: `EngineError`, a memory or a retrieval/answer failure.
//!
//! Modules depend one way: `engine` and `supplied` on the leaves (`error`, `history`,
//! `input`, `outcome`, `recall`, `welcome`) and on the private `answering` (a streamed, cancellable
//! answer cut to the size limit).

mod answering;
pub mod engine;
pub mod error;
pub mod history;
pub mod input;
pub mod outcome;
pub mod recall;
pub mod supplied;
pub mod welcome;

pub use engine::{ChatEngine, EngineConfig};
pub use error::EngineError;
pub use history::{history_turns, HistoryWindow};
pub use input::MessageRejection;
pub use outcome::{TurnIds, TurnOutcome, TurnTimings};
pub use recall::RecallConfig;
pub use supplied::{SuppliedOutcome, SuppliedTurn};
pub use welcome::welcome_text;
