//! Answers people trust, through the engine and the HTTP API: an LLM that cannot be reached
//! is replaced by the offline answerer, and says so (JSON and SSE); small talk is answered,
//! kept, and not welcomed back as a question.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Method, StatusCode};
use common::*;
use ragchat_memory::SessionKey;
use ragchat_rag::{ExtractiveAnswerer, FallbackAnswerer, OpenAiAnswerer, OpenAiConfig};

/// An engine whose LLM endpoint is a port nothing listens on, backed by the offline answerer.
async fn engine_with_unreachable_llm() -> ragchat_server::ChatEngine {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut config = OpenAiConfig::new(format!("http://{address}/v1"), "m");
    config.retry_backoff = Duration::from_millis(5);
    let llm = Arc::new(OpenAiAnswerer::new(config).unwrap());
    let offline = Arc::new(ExtractiveAnswerer::for_index(&index()));
    engine_with(
        manager("memory://").await,
        Arc::new(FallbackAnswerer::new(llm, offline)),
    )
}

#[tokio::test]
async fn an_unreachable_llm_is_answered_offline_and_the_api_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let app = ragchat_server::app(state(
        engine_with_unreachable_llm().await,
        keys_auth(dir.path()),
    ));

    let reply = send(
        &app,
        request(
            Method::POST,
            "/v1/sessions/s/messages",
            Some(ALICE_KEY),
            Some(r#"{"content":"What is overfitting?"}"#.into()),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["fallback"], true, "{body}");
    let reason = body["fallback_reason"].as_str().expect("a reason");
    assert!(reason.contains("unreachable"), "{reason}");
    let answer = body["answer"]["content"].as_str().unwrap();
    assert!(answer.starts_with("Overfitting happens when"), "{answer}");
    assert!(!body["answer"]["sources"].as_array().unwrap().is_empty());

    let mut streamed = request(
        Method::POST,
        "/v1/sessions/s/messages",
        Some(ALICE_KEY),
        Some(r#"{"content":"How do I prevent it?"}"#.into()),
    );
    streamed
        .headers_mut()
        .insert(header::ACCEPT, "text/event-stream".parse().unwrap());
    let reply = send(&app, streamed).await;
    assert_eq!(reply.status, StatusCode::OK);
    let events = parse_sse(&reply.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let n = names.len();
    assert!(n >= 4, "{names:?}");
    assert_eq!(
        &names[n - 3..],
        ["fallback", "sources", "done"],
        "{names:?}"
    );
    assert!(names[..n - 3].iter().all(|n| *n == "token"), "{names:?}");
    assert_eq!(events[n - 3].1["fallback"], true);
    assert!(events[n - 3].1["reason"]
        .as_str()
        .unwrap()
        .contains("unreachable"));

    // A working turn says nothing of a fallback.
    let (app, _dir) = {
        let dir = tempfile::tempdir().unwrap();
        let state = state(engine(manager("memory://").await), keys_auth(dir.path()));
        (ragchat_server::app(state), dir)
    };
    let body = send(
        &app,
        request(
            Method::POST,
            "/v1/sessions/s/messages",
            Some(ALICE_KEY),
            Some(r#"{"content":"What is overfitting?"}"#.into()),
        ),
    )
    .await
    .json();
    assert_eq!(body["fallback"], false, "{body}");
    assert!(body.get("fallback_reason").is_none(), "{body}");
}

#[tokio::test]
async fn small_talk_is_answered_and_kept_but_not_welcomed_back_as_a_question() {
    let engine = engine(manager("memory://").await);
    let key = SessionKey::new("alice", "chat").unwrap();
    let hello = engine.turn(&key, "Hello!", &mut |_| {}).await.unwrap();
    assert!(
        hello.answer.content.starts_with("Hello!"),
        "{}",
        hello.answer.content
    );
    assert!(hello.answer.sources.is_empty());
    let question = engine
        .turn(&key, "What is overfitting?", &mut |_| {})
        .await
        .unwrap();
    assert!(!question.answer.sources.is_empty());
    let thanks = engine.turn(&key, "Thanks!", &mut |_| {}).await.unwrap();
    assert!(
        thanks.answer.content.starts_with("You're welcome"),
        "{}",
        thanks.answer.content
    );
    assert_eq!(thanks.fallback, None);

    // Every message is kept ...
    assert_eq!(engine.memory().history(&key).await.unwrap().len(), 6);
    // ... but the welcome names only what was asked.
    assert_eq!(
        engine.welcome(&key).await.unwrap().as_deref(),
        Some("Welcome back! Last time you asked \"What is overfitting?\".")
    );
    // And "continue" picks up the topic, not the thank-you.
    let resumed = engine.turn(&key, "Continue", &mut |_| {}).await.unwrap();
    assert!(
        resumed
            .answer
            .content
            .starts_with("We were talking about overfitting and regularization"),
        "{}",
        resumed.answer.content
    );
}
