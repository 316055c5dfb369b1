//! The chat-completions protocol's shapes through the router: streamed chunks, the model
//! list, errors in the protocol's shape that change nothing, and `--llm-url` mode, where
//! the client's messages and the retrieved passages go to the upstream model (an in-test
//! HTTP server on a real socket stands in for it) and its streamed answer comes back and
//! is stored.

mod common;
mod openai_common;

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use common::*;
use openai_common::*;
use ragchat_rag::{OpenAiAnswerer, OpenAiConfig};
use serde_json::{json, Value};

async fn alice_and_bob() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = state(engine(manager("memory://").await), keys_auth(dir.path()));
    (ragchat_server::app(state), dir)
}

#[tokio::test]
async fn a_streamed_answer_is_chunks_then_sources_then_usage_then_done() {
    let (app, _dir) = alice_and_bob().await;
    let question = [msg("user", "What is gradient descent?")];
    let request = body(
        &question,
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let reply = complete(&app, Some(ALICE_KEY), &request, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let session = reply.headers["x-session-id"].to_str().unwrap().to_string();
    let events = sse_data(&reply.text());
    assert_eq!(events.last(), Some(&Value::String("[DONE]".into())));
    let chunks = &events[..events.len() - 1];
    let id = &chunks[0]["id"];
    assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
    for chunk in chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
        assert_eq!(&chunk["id"], id);
        assert_eq!(chunk["model"], "ragchat");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["session_id"], session.as_str());
    let sources = finish["sources"]
        .as_array()
        .expect("sources on the finish chunk");
    assert!(!sources.is_empty());
    assert_eq!(sources[0]["index"], 1);
    assert!(sources[0]["path"].as_str().unwrap().ends_with(".md"));
    let middle = &chunks[1..chunks.len() - 2];
    assert!(middle.len() >= 3, "the answer arrives in pieces");
    assert!(middle
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null() && c.get("sources").is_none()));
    let streamed: String = middle
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert!(streamed.contains("[1]"), "{streamed}");

    let stored = stored(&app, ALICE_KEY).await;
    assert_eq!(
        stored,
        vec![(
            session,
            vec![
                ("user".into(), "What is gradient descent?".into()),
                ("assistant".into(), streamed)
            ]
        )]
    );
}

#[tokio::test]
async fn models_are_listed_for_callers_with_a_key() {
    let (app, _dir) = alice_and_bob().await;
    let list = get(&app, "/v1/models", Some(ALICE_KEY)).await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ragchat"]);
    assert_eq!(list["data"][0]["object"], "model");
    let one = get(&app, "/v1/models/ragchat", Some(ALICE_KEY)).await;
    assert_eq!(one.json()["id"], "ragchat");
    let missing = get(&app, "/v1/models/gpt-4o", Some(ALICE_KEY)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"]["code"], "model_not_found");
    let anonymous = get(&app, "/v1/models", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json()["error"]["code"], "invalid_api_key");
}

/// Asserts the protocol's error shape: `{"error":{"message","type","param","code"}}`.
fn expect_openai_error(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text());
    let body = reply.json();
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    assert_eq!(error["type"], kind, "{body}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    assert!(error.get("param").is_some(), "{body}");
}

#[tokio::test]
async fn bad_requests_get_the_protocols_errors_and_change_nothing() {
    let (app, _dir) = alice_and_bob().await;
    let good = body(&[msg("user", "What is ML?")], json!({}));
    let post = |key: Option<&'static str>, text: String| {
        let app = app.clone();
        async move {
            send(
                &app,
                request(Method::POST, "/v1/chat/completions", key, Some(text)),
            )
            .await
        }
    };
    let reply = post(None, good.to_string()).await;
    expect_openai_error(&reply, StatusCode::UNAUTHORIZED, "invalid_api_key");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    let reply = post(Some("wrong-key-0123456789abcdef"), good.to_string()).await;
    expect_openai_error(&reply, StatusCode::UNAUTHORIZED, "invalid_api_key");
    let reply = post(Some(ALICE_KEY), "{\"model\": \"ragchat\", ".into()).await;
    expect_openai_error(&reply, StatusCode::BAD_REQUEST, "invalid_json");
    let reply = post(Some(ALICE_KEY), json!({"messages": []}).to_string()).await;
    expect_openai_error(&reply, StatusCode::BAD_REQUEST, "invalid_json");
    let reply = post(
        Some(ALICE_KEY),
        body(&[msg("user", "hi")], json!({"model": "gpt-4o"})).to_string(),
    )
    .await;
    expect_openai_error(&reply, StatusCode::NOT_FOUND, "model_not_found");
    assert_eq!(reply.json()["error"]["param"], "model");
    let reply = post(
        Some(ALICE_KEY),
        body(&[msg("user", "hi")], json!({"temperature": 3})).to_string(),
    )
    .await;
    expect_openai_error(&reply, StatusCode::BAD_REQUEST, "invalid_input");
    let huge = "x".repeat(ragchat_memory::manager::DEFAULT_MAX_CONTENT_BYTES + 1);
    let reply = post(
        Some(ALICE_KEY),
        body(&[msg("user", &huge)], json!({})).to_string(),
    )
    .await;
    expect_openai_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(reply.json()["error"]["param"], "messages[0].content");
    let over = "y".repeat(ragchat_server::routes::openai::MAX_REQUEST_BYTES);
    let reply = post(
        Some(ALICE_KEY),
        body(&[msg("user", &over)], json!({})).to_string(),
    )
    .await;
    expect_openai_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    assert!(
        stored(&app, ALICE_KEY).await.is_empty(),
        "nothing was stored"
    );
}

/// The stand-in upstream model: records each request and streams a fixed answer.
#[derive(Default)]
struct Upstream {
    requests: Mutex<Vec<Value>>,
}

const UPSTREAM_ANSWER: [&str; 3] = ["Gradient descent ", "walks downhill ", "on the loss [1]."];

async fn upstream_completions(
    State(upstream): State<Arc<Upstream>>,
    Json(body): Json<Value>,
) -> Response {
    upstream.requests.lock().unwrap().push(body);
    let mut sse = String::new();
    for delta in UPSTREAM_ANSWER {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": delta}}]});
        sse.push_str(&format!("data: {chunk}\n\n"));
    }
    sse.push_str("data: [DONE]\n\n");
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(Bytes::from(sse)))
        .expect("valid response")
}

#[tokio::test]
async fn behind_llm_url_the_clients_messages_and_the_passages_go_upstream() {
    let upstream = Arc::new(Upstream::default());
    let stand_in = Router::new()
        .route("/v1/chat/completions", post(upstream_completions))
        .with_state(Arc::clone(&upstream));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, stand_in).await });
    let answerer = OpenAiAnswerer::new(OpenAiConfig::new(
        format!("http://{addr}/v1"),
        "upstream-7b",
    ))
    .expect("valid config");
    let dir = tempfile::tempdir().unwrap();
    let state = state(
        engine_with(manager("memory://").await, Arc::new(answerer)),
        keys_auth(dir.path()),
    );
    let app = ragchat_server::app(state);

    let models = get(&app, "/v1/models", Some(ALICE_KEY)).await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ragchat", "upstream-7b"]);

    let chat = [
        msg("system", "You are terse."),
        msg("user", "What is machine learning?"),
        msg("assistant", "Learning patterns from data."),
        msg("user", "How does gradient descent work?"),
    ];
    let request = body(
        &chat,
        json!({"model": "upstream-7b", "stream": true, "temperature": 0.3, "max_tokens": 77}),
    );
    let reply = complete(&app, Some(ALICE_KEY), &request, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let events = sse_data(&reply.text());
    let streamed: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, UPSTREAM_ANSWER.concat());
    let finish = &events[events.len() - 2];
    assert!(
        !finish["sources"].as_array().unwrap().is_empty(),
        "{finish}"
    );

    let sent = upstream.requests.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent["model"], "upstream-7b");
    assert_eq!(sent["stream"], true);
    assert!(
        (sent["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6,
        "{sent}"
    );
    assert_eq!(sent["max_tokens"], 77);
    let upstream_messages = sent["messages"].as_array().unwrap();
    let roles: Vec<&str> = upstream_messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "system", "user", "assistant", "user"]);
    assert_eq!(upstream_messages[1]["content"], "You are terse.");
    assert_eq!(
        upstream_messages[3]["content"],
        "Learning patterns from data."
    );
    let last = upstream_messages[4]["content"].as_str().unwrap();
    assert!(
        last.starts_with("Sources:") && last.contains("\n[1] "),
        "{last}"
    );
    assert!(
        last.ends_with("Question: How does gradient descent work?"),
        "{last}"
    );

    let stored = stored(&app, ALICE_KEY).await;
    assert_eq!(stored.len(), 1);
    let mut expected = pairs(&chat);
    expected.push(("assistant".into(), UPSTREAM_ANSWER.concat()));
    assert_eq!(stored[0].1, expected);
}

#[tokio::test]
async fn mangled_bodies_get_an_answer_or_a_client_error_never_a_server_error() {
    let (app, _dir) = alice_and_bob().await;
    let valid = body(
        &[
            msg("system", "Be brief."),
            msg("user", "What is ML?"),
            msg("assistant", "Learning from data [1]."),
            msg("user", "How does it learn?"),
        ],
        json!({"temperature": 0.2, "max_tokens": 50}),
    )
    .to_string()
    .into_bytes();
    // A fixed-seed generator: the same mutations on every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    let alphabet = b"{}[]\":,0-9 aeuZ\\\x00\xff";
    for round in 0..300 {
        let mut bytes = valid.clone();
        for _ in 0..1 + next(4) {
            let at = next(bytes.len());
            match next(3) {
                0 => bytes[at] = alphabet[next(alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[next(alphabet.len())]),
            }
        }
        let mut request = request(Method::POST, "/v1/chat/completions", Some(ALICE_KEY), None);
        *request.body_mut() = axum::body::Body::from(bytes.clone());
        let reply = send(&app, request).await;
        let shown = || {
            format!(
                "round {round}: {} for {:?}",
                reply.status,
                String::from_utf8_lossy(&bytes)
            )
        };
        match reply.status.as_u16() {
            200 => assert_eq!(reply.json()["object"], "chat.completion", "{}", shown()),
            400 | 404 | 413 => {
                let error = &reply.json()["error"];
                assert!(
                    error["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{}",
                    shown()
                );
                assert_eq!(error["type"], "invalid_request_error", "{}", shown());
            }
            _ => panic!("{}", shown()),
        }
    }
}
