//! Running a chat-completions turn as a tracked task that records the turn metrics.
//!
//! As for ragchat's own route ([`crate::turn`]): the turn runs in its own task, so a
//! client that disconnects cannot abort it between the answer and the append, and a
//! graceful shutdown waits for it. The task also holds the conversation's lock until
//! the turn is stored.

use std::time::Instant;

use ragchat_memory::MessageStatus;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::error::OpenAiError;
use crate::metrics::TurnOutcomeLabel;
use crate::state::AppState;
use ragchat_engine::EngineError;
use ragchat_engine::{SuppliedOutcome, SuppliedTurn};

/// Starts `turn` in a tracked task; answer deltas go to `sink`. `started` is when the
/// request began (the turn's total time includes reconciling); `lock` is released when
/// the turn is stored.
pub fn spawn(
    state: &AppState,
    turn: SuppliedTurn,
    started: Instant,
    lock: OwnedMutexGuard<()>,
    mut sink: impl FnMut(&str) + Send + 'static,
    cancel: CancellationToken,
) -> JoinHandle<Result<SuppliedOutcome, EngineError>> {
    let state = state.clone();
    state.clone().turns().spawn(async move {
        let _lock = lock;
        let metrics = state.metrics();
        let _in_flight = metrics.turn_started();
        let key = turn.key.clone();
        let result = state
            .engine()
            .turn_supplied(turn, &mut |delta| sink(delta), &cancel)
            .await;
        let took = started.elapsed();
        match &result {
            Ok(outcome) => {
                let label = if outcome.answer.status == MessageStatus::Incomplete {
                    TurnOutcomeLabel::Cancelled
                } else {
                    TurnOutcomeLabel::Ok
                };
                metrics.turn_finished(
                    &outcome.key,
                    label,
                    took,
                    Some(&outcome.timings),
                    outcome.journaled,
                );
                if outcome.journaled {
                    tracing::warn!(session = %outcome.key, "store unreachable: the turn was kept in the local journal");
                }
            }
            Err(e) => {
                metrics.turn_finished(&key, TurnOutcomeLabel::Error, took, None, false);
                tracing::debug!(session = %key, error = %e, "chat-completions turn failed");
            }
        }
        result
    })
}

/// Waits for a spawned turn; a panicked task answers 500.
///
/// # Errors
/// The turn's own error, in the protocol's shape.
pub async fn join(
    handle: JoinHandle<Result<SuppliedOutcome, EngineError>>,
) -> Result<SuppliedOutcome, OpenAiError> {
    match handle.await {
        Ok(result) => result.map_err(OpenAiError::from),
        Err(e) => {
            Err(crate::error::ApiError::internal(format!("the turn task failed: {e}")).into())
        }
    }
}
