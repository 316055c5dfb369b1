//! Running a chat turn for the HTTP API: input checks that answer before anything
//! runs, and the turn itself as a tracked task that records its metrics.
//!
//! A turn runs in its own task (on [`AppState::turns`]) rather than in the request's
//! future: a client that disconnects then cannot abort it between the answer and the
//! append, and a graceful shutdown waits for it to be stored.

use std::time::Instant;

use ragchat_memory::{MessageStatus, SessionKey};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::metrics::TurnOutcomeLabel;
use crate::state::AppState;
use ragchat_engine::{EngineError, MessageRejection, TurnIds, TurnOutcome};

/// Refuses a message before any work: 413 over the size limit, 400 when empty.
///
/// # Errors
/// As above; nothing has been read or written.
pub fn check_message(state: &AppState, content: &str) -> Result<(), ApiError> {
    state.engine().check_message(content).map_err(|e| match e {
        MessageRejection::TooLarge { .. } => ApiError::payload_too_large(e.to_string()),
        MessageRejection::Empty => ApiError::invalid_input(e.to_string()),
    })
}

/// Starts a turn in a tracked task. Answer deltas go to `sink` as they are produced;
/// when `cancel` fires mid-answer the partial answer is stored as `incomplete`.
pub fn spawn_turn(
    state: &AppState,
    key: SessionKey,
    text: String,
    sink: impl FnMut(&str) + Send + 'static,
    cancel: CancellationToken,
) -> JoinHandle<Result<TurnOutcome, EngineError>> {
    spawn_turn_with_ids(state, key, text, None, sink, cancel)
}

/// Like [`spawn_turn`], giving the turn's messages `ids` (for idempotent retries).
pub fn spawn_turn_with_ids(
    state: &AppState,
    key: SessionKey,
    text: String,
    ids: Option<TurnIds>,
    mut sink: impl FnMut(&str) + Send + 'static,
    cancel: CancellationToken,
) -> JoinHandle<Result<TurnOutcome, EngineError>> {
    let state = state.clone();
    state.clone().turns().spawn(async move {
        let metrics = state.metrics();
        let _in_flight = metrics.turn_started();
        let started = Instant::now();
        let result = state
            .engine()
            .turn_with_ids(&key, &text, ids, &mut |delta| sink(delta), &cancel)
            .await;
        let took = started.elapsed();
        match &result {
            Ok(outcome) => {
                let label = if outcome.answer.status == MessageStatus::Incomplete {
                    TurnOutcomeLabel::Cancelled
                } else {
                    TurnOutcomeLabel::Ok
                };
                metrics.turn_finished(&key, label, took, Some(&outcome.timings), outcome.journaled);
                if outcome.journaled {
                    // The memory layer warns once per outage, not once per turn.
                    tracing::debug!(session = %key, "store unreachable: the turn was kept in the local journal");
                }
            }
            Err(e) => {
                metrics.turn_finished(&key, TurnOutcomeLabel::Error, took, None, false);
                tracing::debug!(session = %key, error = %e, "turn failed");
            }
        }
        result
    })
}

/// Waits for a spawned turn; a panicked task answers 500.
///
/// # Errors
/// The turn's own error, mapped to the API's.
pub async fn join_turn(
    handle: JoinHandle<Result<TurnOutcome, EngineError>>,
) -> Result<TurnOutcome, ApiError> {
    match handle.await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("the turn task failed: {e}"))),
    }
}
