//! OpenAI's chat-completions protocol, so existing clients (the OpenAI SDKs, LangChain's
//! `ChatOpenAI`, Open WebUI, LibreChat) use ragchat's documents and memory by changing a
//! base URL.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/chat/completions` | [`chat_completions`]: `chat.completion`, or `chat.completion.chunk` events with `"stream": true` |
//! | `GET /v1/models` | [`models_list`] |
//! | `GET /v1/models/{model}` | [`model_get`] |
//!
//! Callers authenticate as on the rest of the API (`Authorization: Bearer KEY`); errors
//! come in the protocol's shape ([`error`]). The conversation a request continues is
//! decided by [`reconcile`] (the `X-Session-Id` header, or the conversation's opening);
//! the answer cites its passages with `[n]` markers, and the response carries them as
//! ragchat's extra `sources` field (on the streamed chunk with `finish_reason`), with the
//! session in `session_id` and the `X-Session-Id` response header.
//!
//! Files: [`wire`] (JSON types), [`request`] (checks), [`reconcile`] (conversation
//! identity), [`locks`] (one turn at a time per conversation), [`turn`] (the tracked
//! task), [`stream`] (server-sent events).

pub mod error;
pub mod locks;
pub mod reconcile;
pub mod request;
pub mod stream;
pub mod turn;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ragchat_memory::context::estimate_tokens;
use ragchat_memory::MessageId;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

use self::error::{OpenAiError, OpenAiErrorBody};
use self::locks::ConversationLocks;
use self::stream::ChunkHeader;
use self::wire::{
    cited_sources, AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice, Model,
    ModelList, Usage,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use ragchat_engine::SuppliedTurn;

/// The id under which ragchat itself is always offered.
pub const RAGCHAT_MODEL: &str = "ragchat";

pub use self::wire::MAX_REQUEST_BYTES;

/// The header that names a session (request) and tells which one was used (response).
pub static SESSION_HEADER: HeaderName = HeaderName::from_static("x-session-id");

/// What the protocol's handlers share beyond [`AppState`].
#[derive(Clone, Debug)]
pub struct OpenAiShared {
    inner: Arc<SharedInner>,
}

#[derive(Debug)]
struct SharedInner {
    models: Vec<Model>,
    model_ids: Vec<String>,
    locks: ConversationLocks,
}

impl OpenAiShared {
    /// The models `state`'s engine offers: `ragchat`, and the upstream model behind
    /// `--llm-url` under its own name (the same retrieval and memory, answered by it).
    pub fn new(state: &AppState) -> Self {
        let created = chrono::Utc::now().timestamp();
        let engine = state.engine();
        let chunks = engine.index().num_chunks();
        let upstream = engine.answerer().upstream_model();
        let answers = match &upstream {
            Some(model) => format!("answered by {model}"),
            None => "answered offline by quoting them".to_string(),
        };
        let mut models = vec![Model {
            id: RAGCHAT_MODEL.to_string(),
            object: "model".to_string(),
            created,
            owned_by: "ragchat".to_string(),
            description: format!(
                "ragchat: answers from {chunks} passages of its documents, {answers}, with \
                 citations; conversations are kept"
            ),
        }];
        if let Some(model) = upstream.filter(|m| m != RAGCHAT_MODEL) {
            models.push(Model {
                id: model.clone(),
                object: "model".to_string(),
                created,
                owned_by: "ragchat".to_string(),
                description: format!(
                    "{model} behind ragchat: the same retrieval over {chunks} passages and the \
                     same memory"
                ),
            });
        }
        let model_ids = models.iter().map(|m| m.id.clone()).collect();
        OpenAiShared {
            inner: Arc::new(SharedInner {
                models,
                model_ids,
                locks: ConversationLocks::default(),
            }),
        }
    }
}

/// The protocol's routes, with their own body limit and shared state.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(models_list))
        .route("/v1/models/{model}", get(model_get))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .layer(Extension(OpenAiShared::new(state)))
}

/// Answers the conversation's last user message.
///
/// Send the whole conversation every turn, as the protocol's clients do: ragchat stores
/// only what is new (see the README, "Use it from OpenAI clients"). Or name the session
/// with `X-Session-Id` and send only the new message. The answer cites passages with
/// `[n]`; `sources` lists them. With `"stream": true`, `chat.completion.chunk` events
/// follow, the one with `finish_reason` carrying `sources` and `session_id`, and the stream
/// ends with `data: [DONE]`.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    request_body = ChatCompletionRequest,
    params(
        ("X-Session-Id" = Option<String>, Header,
            description = "The session to continue ([A-Za-z0-9._-]{1,64}); without it the \
                session is derived from the conversation's opening"),
    ),
    responses(
        (status = 200,
            description = "The answer; with `\"stream\": true`, chat.completion.chunk events \
                ending with `data: [DONE]`. The `X-Session-Id` header names the session used.",
            content(
                (ChatCompletion = "application/json"),
                (String = "text/event-stream"),
            )),
        (status = 400, description = "Malformed JSON or an invalid field (`param` names it)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or unknown API key", body = OpenAiErrorBody),
        (status = 404, description = "Unknown model", body = OpenAiErrorBody),
        (status = 409, description = "Too many edited branches of one conversation", body = OpenAiErrorBody),
        (status = 413, description = "A message or the body over the limit", body = OpenAiErrorBody),
        (status = 502, description = "The upstream model failed", body = OpenAiErrorBody),
        (status = 503, description = "Store and journal, or the upstream model, unavailable (see Retry-After)", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(shared): Extension<OpenAiShared>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let caller = caller?;
    state.rate_limits().check_turn(&caller, state.metrics())?;
    let user = caller.user;
    let request: ChatCompletionRequest =
        serde_json::from_slice(&body?).map_err(|e| OpenAiError::invalid_json(e.to_string()))?;
    let checked = request::check(request, &shared.inner.model_ids, state.max_message_bytes())?;
    let named =
        match headers.get(&SESSION_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                OpenAiError::invalid("X-Session-Id", "X-Session-Id is not plain text")
            })?),
        };

    let conversation = match named {
        Some(named) => named.to_string(),
        None => reconcile::root_session(&user, &checked.sent),
    };
    let lock = shared.inner.locks.lock(&user, &conversation).await;
    let resolution = reconcile::resolve(state.memory(), &user, named, checked.sent).await?;
    let session = session_header(resolution.key.session());
    let turn = SuppliedTurn {
        key: resolution.key,
        context: resolution.context,
        store_from: resolution.store_from,
        question: resolution.question,
        options: checked.options,
        known_answers: resolution.known_answers,
        memory_read: started.elapsed(),
    };
    let id = format!("chatcmpl-{}", MessageId::new().as_uuid().simple());
    let created = chrono::Utc::now().timestamp();

    if checked.stream {
        let header = ChunkHeader {
            id,
            created,
            model: checked.model,
            include_usage: checked.include_usage,
        };
        let mut response = stream::respond(&state, turn, started, lock, header);
        response
            .headers_mut()
            .insert(SESSION_HEADER.clone(), session);
        return Ok(response);
    }
    let handle = turn::spawn(
        &state,
        turn,
        started,
        lock,
        |_| {},
        CancellationToken::new(),
    );
    let outcome = turn::join(handle).await?;
    let answer = &outcome.answer;
    let completion = ChatCompletion {
        id,
        object: "chat.completion".to_string(),
        created,
        model: checked.model,
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".to_string(),
                content: answer.content.clone(),
                refusal: None,
            },
            finish_reason: "stop".to_string(),
            logprobs: None,
        }],
        usage: Usage::new(outcome.prompt_tokens, estimate_tokens(&answer.content)),
        sources: cited_sources(answer),
        session_id: outcome.key.session().to_string(),
    };
    let mut response = Json(completion).into_response();
    response.headers_mut().insert(
        SESSION_HEADER.clone(),
        session_header(outcome.key.session()),
    );
    Ok(response)
}

/// A session id as a header value (ids are `[A-Za-z0-9._-]`, always valid).
fn session_header(session: &str) -> HeaderValue {
    HeaderValue::from_str(session).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Lists the models this server offers.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    responses(
        (status = 200, body = ModelList),
        (status = 401, body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn models_list(
    Extension(shared): Extension<OpenAiShared>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<ModelList>, OpenAiError> {
    caller?;
    Ok(Json(ModelList {
        object: "list".to_string(),
        data: shared.inner.models.clone(),
    }))
}

/// Describes one model.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "openai",
    params(("model" = String, Path, description = "A model id")),
    responses(
        (status = 200, body = Model),
        (status = 401, body = OpenAiErrorBody),
        (status = 404, description = "No such model", body = OpenAiErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn model_get(
    Extension(shared): Extension<OpenAiShared>,
    caller: Result<Caller, ApiError>,
    Path(model): Path<String>,
) -> Result<Json<Model>, OpenAiError> {
    caller?;
    shared
        .inner
        .models
        .iter()
        .find(|m| m.id == model)
        .cloned()
        .map(Json)
        .ok_or_else(|| OpenAiError::model_not_found(&model, &shared.inner.model_ids))
}

/// The protocol's part of `/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    paths(chat_completions, models_list, model_get),
    components(schemas(
        OpenAiErrorBody,
        error::OpenAiErrorDetail,
        ChatCompletionRequest,
        wire::ChatMessage,
        wire::MessageContent,
        wire::ContentPart,
        wire::StreamOptions,
        ChatCompletion,
        Choice,
        AssistantMessage,
        Usage,
        wire::CitedSource,
        wire::ChatCompletionChunk,
        wire::ChunkChoice,
        wire::Delta,
        ModelList,
        Model,
    )),
    tags((name = "openai", description = "OpenAI's chat-completions protocol"))
)]
pub struct OpenAiDoc;
