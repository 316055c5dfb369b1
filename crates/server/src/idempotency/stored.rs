//! What the store holds for an idempotent turn: the messages with the key's ids, read
//! from the confirmed history (another server may have stored its attempt).

use ragchat_engine::TurnIds;
use ragchat_memory::{History, Message, SessionKey, SessionManager};

use crate::error::ApiError;

/// The stored messages with the turn's ids, newest first.
fn find(history: &History, ids: TurnIds) -> (Option<&Message>, Option<&Message>) {
    let (mut question, mut answer) = (None, None);
    for m in history.iter().rev() {
        if m.id == ids.question {
            question = Some(m);
        } else if m.id == ids.answer {
            answer = Some(m);
        }
        if question.is_some() && answer.is_some() {
            break;
        }
    }
    (question, answer)
}

/// The turn already stored under these ids, if any.
///
/// # Errors
/// `422 idempotency_key_reused` when the key was used for another message, or for a
/// turn no longer stored in full; the store's errors as usual.
pub async fn prior_turn(
    memory: &SessionManager,
    key: &SessionKey,
    ids: TurnIds,
    text: &str,
) -> Result<Option<(Message, Message)>, ApiError> {
    let history = memory.history_confirmed(key).await?;
    match find(&history, ids) {
        (None, None) => Ok(None),
        (Some(question), _) if question.content != text.trim_end_matches(['\r', '\n']) => {
            Err(ApiError::idempotency_key_reused(
                "this Idempotency-Key was used for another message; send a new key for a new message",
            ))
        }
        (Some(question), Some(answer)) => Ok(Some((question.clone(), answer.clone()))),
        _ => Err(ApiError::idempotency_key_reused(
            "this Idempotency-Key was used for a turn that is no longer stored in full; send a new key",
        )),
    }
}

/// What the store kept for these ids: another server may have stored its attempt
/// first. Falls back to this attempt's messages when the store cannot say.
pub async fn settled(
    memory: &SessionManager,
    key: &SessionKey,
    ids: TurnIds,
    question: Message,
    answer: Message,
) -> (Message, Message) {
    match memory.history_confirmed(key).await {
        Ok(history) => {
            let (q, a) = find(&history, ids);
            (q.cloned().unwrap_or(question), a.cloned().unwrap_or(answer))
        }
        Err(_) => (question, answer),
    }
}
