//! A streamed answer: `chat.completion.chunk` server-sent events ending with
//! `data: [DONE]`.
//!
//! The first chunk carries `delta.role = "assistant"` (sent at once, before the answer
//! starts), then one chunk per text delta, then a chunk with `finish_reason: "stop"` and
//! ragchat's `sources` and `session_id`, then (with `stream_options.include_usage`) a chunk
//! with `usage` and no choices, then `data: [DONE]`. A failure after the stream started is
//! one `data: {"error": {...}}` event, the protocol's way, and the stream ends there.
//! A client that disconnects cancels the turn: the partial answer is stored as
//! `incomplete`, as on ragchat's own route.

use std::convert::Infallible;
use std::time::Instant;

use axum::http::HeaderValue;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{self, Stream, StreamExt};
use ragchat_memory::context::estimate_tokens;
use serde::Serialize;
use tokio::sync::{mpsc, OwnedMutexGuard};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::error::OpenAiError;
use super::wire::{cited_sources, ChatCompletionChunk, ChunkChoice, Delta, Usage};
use crate::error::ApiError;
use crate::state::AppState;
use ragchat_engine::{SuppliedOutcome, SuppliedTurn};

/// What every chunk of one answer shares.
#[derive(Clone, Debug)]
pub struct ChunkHeader {
    /// `chatcmpl-...`.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// The model the request named.
    pub model: String,
    /// Whether to end with a usage chunk.
    pub include_usage: bool,
}

impl ChunkHeader {
    fn chunk(&self, choices: Vec<ChunkChoice>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_string(),
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            sources: None,
            session_id: None,
        }
    }

    fn delta(&self, delta: Delta, finish_reason: Option<&str>) -> ChatCompletionChunk {
        self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            finish_reason: finish_reason.map(str::to_string),
            logprobs: None,
        }])
    }
}

/// What the turn task tells the stream.
enum Update {
    Token(String),
    Finished(Box<Result<SuppliedOutcome, OpenAiError>>),
}

/// Runs `turn` in a task and answers with its stream of chunks.
pub fn respond(
    state: &AppState,
    turn: SuppliedTurn,
    started: Instant,
    lock: OwnedMutexGuard<()>,
    header: ChunkHeader,
) -> Response {
    let (tx, rx) = mpsc::unbounded_channel::<Update>();
    let cancel = CancellationToken::new();
    let tokens = tx.clone();
    let handle = super::turn::spawn(
        state,
        turn,
        started,
        lock,
        move |delta| {
            // A closed channel means the client is gone; cancellation follows.
            let _ = tokens.send(Update::Token(delta.to_string()));
        },
        cancel.clone(),
    );
    state.turns().spawn(async move {
        let finished = super::turn::join(handle).await;
        let _ = tx.send(Update::Finished(Box::new(finished)));
    });
    let opening = header.delta(
        Delta {
            role: Some("assistant".to_string()),
            content: Some(String::new()),
        },
        None,
    );
    let events = stream::iter([json_event(&opening)])
        .chain(chunk_stream(rx, cancel.drop_guard(), header))
        .map(Ok::<Event, Infallible>);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Ask reverse proxies (nginx) not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Chunks from the turn's updates. The stream owns a drop guard of the turn's
/// cancellation token: dropping it early (the client went away) cancels the turn.
fn chunk_stream(
    rx: mpsc::UnboundedReceiver<Update>,
    guard: DropGuard,
    header: ChunkHeader,
) -> impl Stream<Item = Event> {
    stream::unfold(Some((rx, guard, header)), |state| async move {
        let (mut rx, guard, header) = state?;
        match rx.recv().await {
            Some(Update::Token(text)) => {
                let chunk = header.delta(
                    Delta {
                        role: None,
                        content: Some(text),
                    },
                    None,
                );
                Some((vec![json_event(&chunk)], Some((rx, guard, header))))
            }
            Some(Update::Finished(result)) => {
                guard.disarm();
                let events = match *result {
                    Ok(outcome) => closing_events(&header, &outcome),
                    Err(e) => vec![json_event(&e.body())],
                };
                Some((events, None))
            }
            None => {
                guard.disarm();
                let e = OpenAiError::from(ApiError::internal("the turn ended without a result"));
                Some((vec![json_event(&e.body())], None))
            }
        }
    })
    .flat_map(stream::iter)
}

/// The finish chunk (with ragchat's extras), the usage chunk if asked for, `[DONE]`.
fn closing_events(header: &ChunkHeader, outcome: &SuppliedOutcome) -> Vec<Event> {
    let mut finish = header.delta(Delta::default(), Some("stop"));
    finish.sources = Some(cited_sources(&outcome.answer));
    finish.session_id = Some(outcome.key.session().to_string());
    let mut events = vec![json_event(&finish)];
    if header.include_usage {
        let mut usage = header.chunk(Vec::new());
        usage.usage = Some(Usage::new(
            outcome.prompt_tokens,
            estimate_tokens(&outcome.answer.content),
        ));
        events.push(json_event(&usage));
    }
    events.push(Event::default().data("[DONE]"));
    events
}

fn json_event(data: &impl Serialize) -> Event {
    Event::default().json_data(data).unwrap_or_else(|e| {
        let body = OpenAiError::from(ApiError::internal(format!("cannot encode a chunk: {e}")));
        Event::default().data(serde_json::to_string(&body.body()).unwrap_or_default())
    })
}
