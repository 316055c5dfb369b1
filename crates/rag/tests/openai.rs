//! `OpenAiAnswerer` against a real HTTP server on 127.0.0.1 that speaks the chat-completions
//! streaming protocol, with scripted responses per request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ragchat_rag::{
    AnswerRequest, Answerer, Chunk, HistoryTurn, Hit, OpenAiAnswerer, OpenAiConfig, RagError,
};
use serde_json::Value;

/// What the fake endpoint answers to one request.
#[derive(Clone)]
enum Reply {
    /// An SSE stream of these content deltas (then `[DONE]`), sent in small pieces.
    Stream(Vec<&'static str>),
    /// A status with a JSON error body.
    Error(StatusCode, &'static str),
    /// A plain JSON completion, as servers that ignore `stream: true` send.
    Whole(&'static str),
    /// These deltas, then the connection breaks.
    Broken(Vec<&'static str>),
    /// No response for this long.
    Stall(Duration),
}

#[derive(Default)]
struct Fake {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<(HeaderMap, Value)>>,
    /// Path and query of each request.
    uris: Mutex<Vec<String>>,
}

async fn chat_completions(
    State(fake): State<Arc<Fake>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    fake.uris
        .lock()
        .expect("not poisoned")
        .push(uri.to_string());
    fake.requests
        .lock()
        .expect("not poisoned")
        .push((headers, body));
    let reply = fake.replies.lock().expect("not poisoned").pop_front();
    match reply.unwrap_or(Reply::Error(StatusCode::GONE, "script exhausted")) {
        Reply::Error(status, message) => {
            let body = serde_json::json!({"error": {"message": message, "type": "server_error"}});
            (status, Json(body)).into_response()
        }
        Reply::Whole(text) => {
            let body = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": text}}]});
            Json(body).into_response()
        }
        Reply::Stall(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Broken(deltas) => {
            let mut pieces: Vec<Result<Bytes, std::io::Error>> = deltas
                .into_iter()
                .map(|delta| {
                    let chunk = serde_json::json!({"choices": [{"delta": {"content": delta}}]});
                    Ok(Bytes::from(format!("data: {chunk}\n\n")))
                })
                .collect();
            pieces.push(Err(std::io::Error::other("connection reset")));
            // Pause before breaking, so the deltas reach the client first.
            let paced = futures::StreamExt::then(futures::stream::iter(pieces), |piece| async {
                if piece.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                piece
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(paced))
                .expect("valid response")
        }
        Reply::Stream(deltas) => {
            let mut sse = String::from(": connected\n\n");
            sse.push_str(
                "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
            );
            for delta in deltas {
                let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": null}]});
                sse.push_str(&format!("data: {chunk}\r\n\r\n"));
            }
            sse.push_str(
                "data: {\"choices\":[],\"usage\":{\"total_tokens\":9}}\n\ndata: [DONE]\n\n",
            );
            // Small pieces, so events and UTF-8 characters straddle network reads.
            let pieces: Vec<Result<Bytes, std::io::Error>> = sse
                .into_bytes()
                .chunks(7)
                .map(|piece| Ok(Bytes::copy_from_slice(piece)))
                .collect();
            Response::builder()
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(pieces)))
                .expect("valid response")
        }
    }
}

/// Starts the fake endpoint; returns its base URL (`http://127.0.0.1:PORT/v1`) and state.
async fn start(replies: Vec<Reply>) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        replies: Mutex::new(replies.into()),
        requests: Mutex::default(),
        uris: Mutex::default(),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (format!("http://{address}/v1"), fake)
}

fn config(base_url: &str) -> OpenAiConfig {
    let mut config = OpenAiConfig::new(base_url, "test-model");
    config.api_key = Some("sk-test".into());
    config.retry_backoff = Duration::from_millis(10);
    config.timeout = Duration::from_secs(5);
    config
}

fn request() -> AnswerRequest {
    let hit = |path: &str, heading: &str, text: &str| {
        Hit::new(
            Chunk {
                path: path.into(),
                title: heading.into(),
                heading: heading.into(),
                line_start: 3,
                line_end: 9,
                text: text.into(),
            },
            4.2,
        )
    };
    AnswerRequest {
        question: "How does it learn?".into(),
        history: vec![
            HistoryTurn::user("What is machine learning?"),
            HistoryTurn::assistant("Software that learns patterns from data [1]."),
        ],
        hits: vec![
            hit(
                "how-models-learn.md",
                "How Models Learn",
                "Models adjust parameters.",
            ),
            hit(
                "gradient-descent.md",
                "Gradient Descent",
                "Steps go downhill.",
            ),
        ],
        recalled: Vec::new(),
    }
}

async fn answer(answerer: &OpenAiAnswerer) -> (Result<ragchat_rag::Answer, RagError>, Vec<String>) {
    let mut deltas = Vec::new();
    let result = answerer
        .answer(&request(), &mut |delta: &str| deltas.push(delta.to_owned()))
        .await;
    (result, deltas)
}

#[tokio::test]
async fn streams_an_answer_from_a_prompt_with_history_and_sources() {
    let (url, fake) = start(vec![Reply::Stream(vec![
        "Models ",
        "adjust ",
        "parameters [1] — ",
        "é✓.",
    ])])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let (result, deltas) = answer(&answerer).await;
    let answer = result.expect("answered");

    assert_eq!(answer.text, "Models adjust parameters [1] — é✓.");
    assert_eq!(
        deltas,
        vec!["Models ", "adjust ", "parameters [1] — ", "é✓."]
    );
    let paths: Vec<&str> = answer.sources.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, vec!["how-models-learn.md", "gradient-descent.md"]);

    let requests = fake.requests.lock().expect("not poisoned");
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    assert_eq!(headers[header::AUTHORIZATION], "Bearer sk-test");
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    let messages = body["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, vec!["system", "user", "assistant", "user"]);
    assert!(messages[0]["content"]
        .as_str()
        .unwrap_or_default()
        .contains("[1]"));
    assert_eq!(messages[1]["content"], "What is machine learning?");
    assert_eq!(
        messages[2]["content"],
        "Software that learns patterns from data [1]."
    );
    let last = messages[3]["content"].as_str().expect("text");
    assert!(
        last.contains(
            "[1] how-models-learn.md — How Models Learn (lines 3-9)\nModels adjust parameters."
        ),
        "{last}"
    );
    assert!(
        last.contains("[2] gradient-descent.md — Gradient Descent (lines 3-9)\nSteps go downhill."),
        "{last}"
    );
    assert!(last.ends_with("Question: How does it learn?"), "{last}");
}

#[tokio::test]
async fn a_503_is_retried_before_anything_streams() {
    let (url, fake) = start(vec![
        Reply::Error(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        Reply::Stream(vec!["Second ", "time."]),
    ])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let (result, deltas) = answer(&answerer).await;
    assert_eq!(result.expect("answered after a retry").text, "Second time.");
    assert_eq!(deltas.concat(), "Second time.");
    assert_eq!(fake.requests.lock().expect("not poisoned").len(), 2);
}

#[tokio::test]
async fn retries_give_up_with_the_servers_message() {
    let (url, fake) = start(vec![
        Reply::Error(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        Reply::Error(StatusCode::TOO_MANY_REQUESTS, "rate limited"),
        Reply::Error(StatusCode::TOO_MANY_REQUESTS, "still rate limited"),
    ])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let (result, deltas) = answer(&answerer).await;
    match result {
        Err(RagError::Llm {
            status,
            message,
            retryable,
            ..
        }) => {
            assert_eq!(status, Some(429));
            assert_eq!(message, "still rate limited");
            assert!(retryable);
        }
        other => panic!("expected an LLM error, got {other:?}"),
    }
    assert!(deltas.is_empty());
    assert_eq!(
        fake.requests.lock().expect("not poisoned").len(),
        3,
        "1 try + 2 retries"
    );
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let (url, fake) = start(vec![Reply::Error(
        StatusCode::NOT_FOUND,
        "model 'test-model' not found",
    )])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let error = answer(&answerer).await.0.expect_err("404 fails");
    assert!(!error.is_retryable());
    assert!(
        error
            .to_string()
            .contains("HTTP 404: model 'test-model' not found"),
        "{error}"
    );
    assert_eq!(fake.requests.lock().expect("not poisoned").len(), 1);
}

#[tokio::test]
async fn a_non_streaming_json_reply_is_accepted() {
    let (url, _) = start(vec![Reply::Whole("Whole answer [2].")]).await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let (result, deltas) = answer(&answerer).await;
    assert_eq!(result.expect("answered").text, "Whole answer [2].");
    assert_eq!(deltas, vec!["Whole answer [2]."]);
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_fast_with_a_clear_error() {
    // Bind and drop: nothing listens on this port any more, so connecting is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let answerer =
        OpenAiAnswerer::new(config(&format!("http://127.0.0.1:{port}/v1"))).expect("valid");
    let started = Instant::now();
    let error = answer(&answerer).await.0.expect_err("nothing listens");
    assert!(matches!(error, RagError::Unavailable { .. }), "{error:?}");
    assert!(error.is_retryable());
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn url_credentials_reach_the_endpoint_and_never_an_error_message() {
    let (url, fake) = start(vec![
        Reply::Stream(vec!["Fine."]),
        Reply::Error(StatusCode::BAD_REQUEST, "no such model"),
    ])
    .await;
    let with_secrets = url.replace("http://", "http://llm-user:llm-pass@")
        + "?api-version=2024-06-01&token=tok-secret";
    let answerer = OpenAiAnswerer::new(config(&with_secrets)).expect("valid");
    let (result, _) = answer(&answerer).await;
    assert_eq!(result.expect("answered").text, "Fine.");
    let error = answer(&answerer).await.0.expect_err("refused");
    assert_eq!(
        fake.uris.lock().unwrap()[0],
        "/v1/chat/completions?api-version=2024-06-01&token=tok-secret",
        "the query string is kept, after the path"
    );
    // reqwest sends the URL's user and password as HTTP basic auth.
    let sent_auth = fake.requests.lock().unwrap()[0]
        .0
        .contains_key(header::AUTHORIZATION);
    assert!(sent_auth);

    // Nor does a transport error (which names the URL it failed on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let unreachable = OpenAiAnswerer::new(config(&format!(
        "http://llm-user:llm-pass@127.0.0.1:{port}/v1?token=tok-secret"
    )))
    .expect("valid");
    let down = answer(&unreachable).await.0.expect_err("nothing listens");
    for message in [error.to_string(), down.to_string(), format!("{down:?}")] {
        for secret in ["llm-user", "llm-pass", "tok-secret"] {
            assert!(!message.contains(secret), "{secret} in {message}");
        }
    }
    assert!(down.to_string().contains("token=***"), "{down}");
}

#[tokio::test]
async fn a_stream_broken_midway_is_not_retried() {
    let (url, fake) = start(vec![
        Reply::Broken(vec!["Half ", "an "]),
        Reply::Stream(vec!["never sent"]),
    ])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let (result, deltas) = answer(&answerer).await;
    let error = result.expect_err("the stream broke");
    assert!(
        matches!(
            error,
            RagError::Llm {
                retryable: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("interrupted"), "{error}");
    assert_eq!(deltas.concat(), "Half an ", "what arrived was passed on");
    assert_eq!(fake.requests.lock().expect("not poisoned").len(), 1);
}

#[tokio::test]
async fn a_silent_endpoint_times_out() {
    let (url, fake) = start(vec![Reply::Stall(Duration::from_secs(3))]).await;
    let mut config = config(&url);
    config.timeout = Duration::from_millis(200);
    config.max_retries = 0;
    let answerer = OpenAiAnswerer::new(config).expect("valid config");
    let error = answer(&answerer).await.0.expect_err("no reply in time");
    assert!(matches!(error, RagError::Timeout { .. }), "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(fake.requests.lock().expect("not poisoned").len(), 1);
}

#[tokio::test]
async fn recalled_messages_reach_the_model_as_sources_numbered_after_the_passages() {
    let (url, fake) = start(vec![Reply::Whole(
        "You asked whether the Sintra train is fast [3].",
    )])
    .await;
    let answerer = OpenAiAnswerer::new(config(&url)).expect("valid config");
    let mut with_recall = request();
    with_recall.question = "What did I ask about Sintra?".into();
    with_recall.recalled.push(ragchat_rag::RecalledTurn {
        at: ragchat_rag::ConversationRef {
            session: "trip".into(),
            message_id: "0191e3a0-0000-7000-8000-000000000001".into(),
            seq: 7,
            role: ragchat_rag::Role::User,
            created_at: "2026-11-20T09:30:00Z".into(),
        },
        content: "Is the train to Sintra fast?".into(),
        score: 2.0,
        same_session: false,
    });
    let answer = answerer
        .answer(&with_recall, &mut |_| {})
        .await
        .expect("answered");
    // `[3]` is the recalled message: sources are the passages, then the recalled.
    assert_eq!(answer.sources.len(), 3);
    let cited = answer.sources[2]
        .conversation
        .as_ref()
        .expect("a conversation");
    assert_eq!((cited.session.as_str(), cited.seq), ("trip", 7));

    let requests = fake.requests.lock().expect("not poisoned");
    let messages = requests[0].1["messages"].as_array().expect("messages");
    let last = messages.last().unwrap()["content"].as_str().expect("text");
    assert!(
        last.contains(
            "[3] conversation `trip`, 2026-11-20: earlier, the user asked\nIs the train to Sintra fast?"
        ),
        "{last}"
    );
    assert!(messages[0]["content"]
        .as_str()
        .unwrap_or_default()
        .contains("A source named `conversation`"));
}
