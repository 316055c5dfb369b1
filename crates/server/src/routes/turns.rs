//! `POST /v1/sessions/{session}/messages`: one chat turn, answered as JSON or streamed
//! as server-sent events.
//!
//! The stream carries `token` events (`{"text": delta}`) while the answer is produced,
//! then `fallback` (`{"fallback": true, "reason"}`, only when the offline answerer stood in
//! for a failed LLM), `sources` (the cited passages) and `done` (the stored assistant
//! message), or a single `error` (`{"error":{"code","message"}}`). If the client disconnects before
//! `done`, the stream's drop guard cancels the turn and the partial answer is stored,
//! marked `incomplete`.
//!
//! With an `Idempotency-Key` the turn is replayed from the store when it is there, and
//! run with the ids the key fixes when not (see [`crate::idempotency`]).

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use ragchat_memory::{Message, SessionKey};
use ragchat_rag::ConversationRef;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};
use utoipa::ToSchema;

use ragchat_engine::TurnIds;

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use crate::idempotency;
use crate::state::AppState;
use crate::turn::{check_message, join_turn, spawn_turn, spawn_turn_with_ids};

/// The body of a new message.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewMessage {
    /// The user's message.
    pub content: String,
}

/// A completed turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnResponse {
    /// The session id.
    pub session: String,
    /// The stored question.
    #[schema(value_type = ragchat_memory::Message)]
    pub user_message: Message,
    /// The stored answer, with the passages it cites in `sources`.
    #[schema(value_type = ragchat_memory::Message)]
    pub answer: Message,
    /// True when the LLM failed and the offline answerer answered instead.
    pub fallback: bool,
    /// Why, in one line for people; only when `fallback` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Earlier messages of the user's conversations recalled into the turn's context,
    /// best first (the answer cites those it used; empty on a replayed turn).
    pub recalled: Vec<ConversationRef>,
}

/// Where the recalled messages of a turn are.
fn recalled_refs(outcome: &ragchat_engine::TurnOutcome) -> Vec<ConversationRef> {
    outcome.recalled.iter().map(|t| t.at.clone()).collect()
}

/// Sends a message and gets the answer.
///
/// With `Accept: text/event-stream` the answer is streamed: `token` events carry text
/// deltas (`{"text": "..."}`), then `fallback` when the offline answerer stood in for a
/// failed LLM (`{"fallback": true, "reason": "..."}`), `recalled` (the earlier messages
/// recalled into the turn's context, when there are any), `sources` (array of sources)
/// and `done` (the stored assistant message); a failure ends the stream with an `error`
/// event. A client that disconnects mid-answer leaves the partial answer stored as
/// `incomplete`. With an `Idempotency-Key`, a retry gets the stored turn instead of a
/// new one (see [`crate::idempotency`]).
#[utoipa::path(
    post,
    path = "/v1/sessions/{session}/messages",
    tag = "chat",
    params(
        ("session" = String, Path, description = "Session id: [A-Za-z0-9._-]{1,64}"),
        ("Idempotency-Key" = Option<String>, Header,
            description = "1-255 visible ASCII characters (e.g. a UUID). A retry with the same key \
                returns the first turn's response (header `Idempotent-Replayed: true`) and stores \
                nothing new, on any server sharing the store"),
    ),
    request_body = NewMessage,
    responses(
        (status = 200,
            description = "The stored question and answer; with `Accept: text/event-stream`, \
                the answer as server-sent events: token, sources, done (or error)",
            content(
                (TurnResponse = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "Invalid session id, empty message, malformed JSON or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or unknown API key", body = ErrorBody),
        (status = 413, description = "Message or body over the limit", body = ErrorBody),
        (status = 422, description = "The Idempotency-Key names another turn (`idempotency_key_reused`)", body = ErrorBody),
        (status = 429, description = "Over the key's rate limit (`rate_limited`) or a locked-out address (`auth_locked`); see Retry-After", body = ErrorBody),
        (status = 503, description = "Store and journal unavailable, or the request deadline passed (see Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn message_create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(session): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewMessage>,
) -> Result<Response, ApiError> {
    let key = SessionKey::new(caller.user.clone(), session)?;
    check_message(&state, &body.content)?;
    let streamed = wants_event_stream(&headers);
    if let Some(idempotency_key) = idempotency::key_from(&headers)? {
        return idempotent_turn(
            &state,
            &caller,
            key,
            body.content,
            &idempotency_key,
            streamed,
        )
        .await;
    }
    state.rate_limits().check_turn(&caller, state.metrics())?;
    if streamed {
        return Ok(stream_turn(&state, key, body.content, None, ()));
    }
    let handle = spawn_turn(
        &state,
        key.clone(),
        body.content,
        |_| {},
        CancellationToken::new(),
    );
    let outcome = join_turn(handle).await?;
    Ok(Json(TurnResponse {
        session: key.session().to_string(),
        recalled: recalled_refs(&outcome),
        user_message: outcome.user_message,
        answer: outcome.answer,
        fallback: outcome.fallback.is_some(),
        fallback_reason: outcome.fallback,
    })
    .into_response())
}

/// A turn with an idempotency key: replayed when stored, run with derived ids when not.
///
/// # Errors
/// As [`idempotency::prior_turn`], the caller's turn rate limit, and the turn's own errors.
async fn idempotent_turn(
    state: &AppState,
    caller: &Caller,
    key: SessionKey,
    text: String,
    idempotency_key: &str,
    streamed: bool,
) -> Result<Response, ApiError> {
    let ids = idempotency::turn_ids(&key, idempotency_key);
    let guard = state.idempotency().lock(&key, idempotency_key).await;
    if let Some((question, answer)) =
        idempotency::prior_turn(state.memory(), &key, ids, &text).await?
    {
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
    let recalled = recalled_refs(&outcome);
    let fallback_reason = outcome.fallback;
    let (user_message, answer) = idempotency::settled(
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
        recalled,
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
            recalled: Vec::new(),
        })
        .into_response()
    };
    response.headers_mut().insert(
        idempotency::REPLAYED_HEADER,
        HeaderValue::from_static("true"),
    );
    response
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// What the turn task tells the stream.
enum Update {
    Token(String),
    /// The stored answer, and why the offline answerer answered, if it stood in for the
    /// LLM, and what the turn recalled.
    Finished(Result<Finished, ApiError>),
}

/// The end of a streamed turn.
struct Finished {
    answer: Message,
    fallback: Option<String>,
    recalled: Vec<ConversationRef>,
}

/// Runs the turn in a task and streams its progress. The stream owns a drop guard of
/// the turn's cancellation token: dropping the stream early (the client went away)
/// cancels the turn, which then stores the partial answer as `incomplete`. With `ids`
/// (an idempotent turn) the `done` event carries what the store kept; `hold` is
/// dropped once the turn is stored.
fn stream_turn(
    state: &AppState,
    key: SessionKey,
    text: String,
    ids: Option<TurnIds>,
    hold: impl Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::unbounded_channel::<Update>();
    let cancel = CancellationToken::new();
    let tokens = tx.clone();
    let settle = (state.memory().clone(), key.clone());
    let handle = spawn_turn_with_ids(
        state,
        key,
        text,
        ids,
        move |delta| {
            // A closed channel means the client is gone; cancellation follows.
            let _ = tokens.send(Update::Token(delta.to_string()));
        },
        cancel.clone(),
    );
    state.turns().spawn(async move {
        let finished = match (join_turn(handle).await, ids) {
            (Ok(outcome), Some(ids)) => {
                let (memory, key) = settle;
                let recalled = recalled_refs(&outcome);
                let fallback = outcome.fallback;
                let stored =
                    idempotency::settled(&memory, &key, ids, outcome.user_message, outcome.answer)
                        .await;
                Ok(Finished {
                    answer: stored.1,
                    fallback,
                    recalled,
                })
            }
            (result, _) => result.map(|outcome| Finished {
                recalled: recalled_refs(&outcome),
                answer: outcome.answer,
                fallback: outcome.fallback,
            }),
        };
        drop(hold);
        let _ = tx.send(Update::Finished(finished));
    });
    let events = event_stream(rx, cancel.drop_guard());
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Ask reverse proxies (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

fn event_stream(
    rx: mpsc::UnboundedReceiver<Update>,
    guard: DropGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Some((rx, guard)), |state| async move {
        let (mut rx, guard) = state?;
        match rx.recv().await {
            Some(Update::Token(text)) => {
                let event = json_event("token", &serde_json::json!({ "text": text }));
                Some((vec![event], Some((rx, guard))))
            }
            Some(Update::Finished(result)) => {
                // The turn is over: nothing left to cancel.
                guard.disarm();
                let events = match result {
                    Ok(Finished {
                        answer,
                        fallback,
                        recalled,
                    }) => {
                        let mut events = Vec::with_capacity(4);
                        if let Some(reason) = fallback {
                            events.push(json_event(
                                "fallback",
                                &serde_json::json!({ "fallback": true, "reason": reason }),
                            ));
                        }
                        if !recalled.is_empty() {
                            events.push(json_event("recalled", &recalled));
                        }
                        events.push(json_event("sources", &answer.sources));
                        events.push(json_event("done", &answer));
                        events
                    }
                    Err(e) => vec![json_event("error", &e.body())],
                };
                Some((events, None))
            }
            None => {
                guard.disarm();
                let e = ApiError::internal("the turn ended without a result");
                Some((vec![json_event("error", &e.body())], None))
            }
        }
    })
    .flat_map(stream::iter)
    .map(Ok)
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|e| {
            let body = ApiError::internal(format!("cannot encode a {name} event: {e}")).body();
            Event::default()
                .event("error")
                .data(serde_json::to_string(&body).unwrap_or_default())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_event_stream_accept_headers() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            wants_event_stream(&h)
        };
        assert!(with("text/event-stream"));
        assert!(with("application/json, text/event-stream;q=0.9"));
        assert!(!with("application/json"));
        assert!(!wants_event_stream(&HeaderMap::new()));
    }
}
