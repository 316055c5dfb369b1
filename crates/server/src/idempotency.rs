//! `Idempotency-Key` on `POST /v1/sessions/{session}/messages`: a client that retries
//! a turn (a timeout, a dropped connection) with the same key gets the first turn's
//! answer, and nothing new is stored, on this server or on any other sharing the store.
//!
//! The key fixes the ids of the turn's two messages: they are derived from (user,
//! session, key) by [`turn_ids`], so every attempt writes the same messages and the
//! store's id-idempotent append keeps the first. Before answering, the stored
//! conversation is asked for those ids: a turn found there is replayed (JSON, or the
//! same `token`, `sources`, `done` events), with `Idempotent-Replayed: true`. Retries
//! on one server wait for the attempt in flight ([`InFlight`]); attempts racing on two
//! servers both run, the store keeps one, and both answer with what it kept.
//!
//! A key is 1-255 visible ASCII characters. Reusing one for a different message is
//! refused (`422 idempotency_key_reused`). A turn cut short (the client went away
//! mid-stream) is stored `incomplete` and replayed as such: use a new key to ask again.
//! The key is honoured while the turn is in the conversation (not after the session is
//! deleted or the turn trimmed).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};

use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::Sse;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream;
use ragchat_memory::{History, Message, MessageId, SessionKey, SessionManager};
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

use crate::auth::Caller;
use crate::engine::TurnIds;
use crate::error::ApiError;
use crate::routes::turns::{json_event, stream_turn, TurnResponse};
use crate::state::AppState;
use crate::turn::{join_turn, spawn_turn_with_ids};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The response header on a replayed turn.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Keys above this many in [`InFlight`] trigger a sweep of finished ones.
const SWEEP_ABOVE: usize = 1024;

/// The request's idempotency key, if it sent one.
///
/// # Errors
/// `400 invalid_input` for a key that is empty, longer than [`MAX_KEY_LEN`] or not
/// visible ASCII, or for more than one key.
pub fn key_from(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid_input(
            "send one Idempotency-Key header, not several",
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid_input(format!(
            "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters (no spaces), e.g. a UUID"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The ids of the two messages of the turn `idempotency_key` names in `key`'s session.
pub fn turn_ids(key: &SessionKey, idempotency_key: &str) -> TurnIds {
    let id = |part: &[u8]| {
        let mut hash = Sha256::new();
        for piece in [
            b"ragchat idempotency v1".as_slice(),
            key.user().as_bytes(),
            key.session().as_bytes(),
            idempotency_key.as_bytes(),
            part,
        ] {
            // Length-prefixed, so no two different inputs hash the same bytes.
            hash.update((piece.len() as u64).to_be_bytes());
            hash.update(piece);
        }
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        MessageId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    };
    TurnIds {
        question: id(b"question"),
        answer: id(b"answer"),
    }
}

/// Attempts in flight on this server, one lock per (session, key).
#[derive(Debug, Default)]
pub struct InFlight {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl InFlight {
    /// Waits for any attempt with the same key in this session to finish, and holds
    /// the key until the guard is dropped.
    pub async fn lock(&self, key: &SessionKey, idempotency_key: &str) -> OwnedMutexGuard<()> {
        let name = format!("{}\0{}\0{idempotency_key}", key.user(), key.session());
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > SWEEP_ABOVE {
                locks.retain(|_, lock| lock.strong_count() > 0);
            }
            match locks.get(&name).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(name, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

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
async fn prior_turn(
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
pub(crate) async fn settled(
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

/// A turn with an idempotency key: replayed when stored, run with derived ids when not.
///
/// # Errors
/// As [`prior_turn`], the caller's turn rate limit, and the turn's own errors.
pub async fn idempotent_turn(
    state: &AppState,
    caller: &Caller,
    key: SessionKey,
    text: String,
    idempotency_key: &str,
    streamed: bool,
) -> Result<Response, ApiError> {
    let ids = turn_ids(&key, idempotency_key);
    let guard = state.idempotency().lock(&key, idempotency_key).await;
    if let Some((question, answer)) = prior_turn(state.memory(), &key, ids, &text).await? {
        state.metrics().edge().idempotent_replay();
        return Ok(replay(&key, question, answer, streamed));
    }
    state.rate_limits().check_turn(caller, state.metrics())?;
    if streamed {
        // The guard goes with the stream's turn: a retry waits until it is stored.
        return Ok(stream_turn(state, key, text, Some(ids), guard));
    }
    // The guard lives in the turn's task (in its sink), not in this request: a client
    // that gives up does not release the key while its turn is still running.
    let handle = spawn_turn_with_ids(
        state,
        key.clone(),
        text,
        Some(ids),
        move |_| {
            let _held = &guard;
        },
        CancellationToken::new(),
    );
    let outcome = join_turn(handle).await?;
    let fallback_reason = outcome.fallback;
    let (user_message, answer) = settled(
        state.memory(),
        &key,
        ids,
        outcome.user_message,
        outcome.answer,
    )
    .await;
    Ok(Json(TurnResponse {
        session: key.session().to_string(),
        user_message,
        answer,
        fallback: fallback_reason.is_some(),
        fallback_reason,
    })
    .into_response())
}

/// The stored turn, as the first attempt answered it.
fn replay(key: &SessionKey, question: Message, answer: Message, streamed: bool) -> Response {
    let mut response = if streamed {
        let events = vec![
            json_event("token", &serde_json::json!({ "text": answer.content })),
            json_event("sources", &answer.sources),
            json_event("done", &answer),
        ];
        Sse::new(stream::iter(events.into_iter().map(Ok::<_, Infallible>))).into_response()
    } else {
        // Whether the first attempt's answer came from the offline fallback is not
        // stored; the replay reports the stored answer as it is.
        Json(TurnResponse {
            session: key.session().to_string(),
            user_message: question,
            answer,
            fallback: false,
            fallback_reason: None,
        })
        .into_response()
    };
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_part() {
        let key = SessionKey::new("alice", "s").unwrap();
        let ids = turn_ids(&key, "k1");
        assert_eq!(ids, turn_ids(&key, "k1"), "deterministic");
        assert_ne!(ids.question, ids.answer);
        assert_ne!(ids, turn_ids(&key, "k2"));
        assert_ne!(ids, turn_ids(&SessionKey::new("bob", "s").unwrap(), "k1"));
        assert_ne!(ids, turn_ids(&SessionKey::new("alice", "t").unwrap(), "k1"));
        // No ambiguity where the parts meet.
        assert_ne!(
            turn_ids(&SessionKey::new("ab", "c").unwrap(), "k"),
            turn_ids(&SessionKey::new("a", "bc").unwrap(), "k")
        );
    }

    #[test]
    fn keys_are_checked() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, HeaderValue::from_str(v).unwrap());
            key_from(&h)
        };
        assert_eq!(with("0b7c-42").unwrap().as_deref(), Some("0b7c-42"));
        assert!(key_from(&HeaderMap::new()).unwrap().is_none());
        for bad in ["", "a b", &"x".repeat(256)] {
            assert_eq!(with(bad).unwrap_err().code(), "invalid_input", "{bad:?}");
        }
        let mut two = HeaderMap::new();
        two.append(HEADER, HeaderValue::from_static("a"));
        two.append(HEADER, HeaderValue::from_static("b"));
        assert!(key_from(&two).is_err());
    }
}
