//! The API's edges through the router: JSON-escaped messages at the size limit,
//! `Idempotency-Key` retries (on the same server and on another one sharing the Redis),
//! and a `/readyz` that does not hammer Redis however often it is polled.

mod common;

use std::time::Instant;

use axum::http::{header, Method, StatusCode};
use common::*;
use ragchat_server::auth::Auth;
use serde_json::Value;

/// `{"content": TEXT}` with every character written as a `\uXXXX` escape, the way a
/// careful (or hostile) JSON encoder may send it.
fn escaped_body(text: &str) -> String {
    let mut body = String::from("{\"content\":\"");
    for unit in text.encode_utf16() {
        body.push_str(&format!("\\u{unit:04x}"));
    }
    body.push_str("\"}");
    body
}

#[tokio::test]
async fn a_message_at_the_limit_is_accepted_however_it_is_escaped() {
    let app = ragchat_server::app(state(engine(manager("memory://").await), Auth::local()));
    let limit = ragchat_memory::manager::DEFAULT_MAX_CONTENT_BYTES;
    // 2-byte characters up to the limit (Python's json.dumps writes each as \u00e9).
    let text = format!("{} what is ML?", "é".repeat((limit - 12) / 2));
    assert!(
        text.len() <= limit && text.len() > limit - 2,
        "{}",
        text.len()
    );
    let body = escaped_body(&text);
    assert!(body.len() > 2 * limit, "the body is {} bytes", body.len());
    let reply = send(
        &app,
        request(Method::POST, "/v1/sessions/s/messages", None, Some(body)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["user_message"]["content"], text.as_str());

    // ASCII escaped as \u0041 is the worst case: six bytes per byte of content.
    let ascii = "a".repeat(limit);
    let reply = send(
        &app,
        request(
            Method::POST,
            "/v1/sessions/s/messages",
            None,
            Some(escaped_body(&ascii)),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());

    // One byte over the decoded limit is refused, whatever the encoding.
    let over = "é".repeat(limit / 2 + 1);
    let reply = send(
        &app,
        request(
            Method::POST,
            "/v1/sessions/s/messages",
            None,
            Some(escaped_body(&over)),
        ),
    )
    .await;
    let message = reply.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(
        message.contains(&format!("limit is {limit} bytes")),
        "{message}"
    );
    let page = get(&app, "/v1/sessions/s/messages", None).await.json();
    assert_eq!(page["messages"].as_array().unwrap().len(), 4, "{page}");
}

async fn post_idempotent(
    app: &axum::Router,
    session: &str,
    key: &str,
    content: &str,
    accept_sse: bool,
) -> Reply {
    let body = serde_json::json!({ "content": content }).to_string();
    let mut request = request(
        Method::POST,
        &format!("/v1/sessions/{session}/messages"),
        None,
        Some(body),
    );
    request
        .headers_mut()
        .insert("idempotency-key", key.parse().unwrap());
    if accept_sse {
        request
            .headers_mut()
            .insert(header::ACCEPT, "text/event-stream".parse().unwrap());
    }
    send(app, request).await
}

async fn contents(app: &axum::Router, session: &str) -> Vec<String> {
    let page = get(app, &format!("/v1/sessions/{session}/messages"), None)
        .await
        .json();
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_stores_nothing_new() {
    let app = ragchat_server::app(state(engine(manager("memory://").await), Auth::local()));
    let first = post_idempotent(&app, "s", "retry-1", "What is overfitting?", false).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let again = post_idempotent(&app, "s", "retry-1", "What is overfitting?", false).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(
        again.json(),
        first.json(),
        "the retry answers the first turn"
    );
    assert_eq!(contents(&app, "s").await.len(), 2, "stored once");

    // The streamed variant replays the same stored answer.
    let streamed = post_idempotent(&app, "s", "retry-1", "What is overfitting?", true).await;
    assert_eq!(streamed.status, StatusCode::OK);
    let events = parse_sse(&streamed.text());
    let done = events
        .iter()
        .find(|(name, _)| name == "done")
        .expect("done");
    assert_eq!(done.1, first.json()["answer"], "{events:?}");
    assert_eq!(contents(&app, "s").await.len(), 2);

    // Another key is another turn; the same key with other content is refused.
    let other = post_idempotent(&app, "s", "retry-2", "What is overfitting?", true).await;
    assert!(parse_sse(&other.text()).iter().any(|(n, _)| n == "done"));
    assert_eq!(contents(&app, "s").await.len(), 4);
    post_idempotent(&app, "s", "retry-1", "Something else", false)
        .await
        .expect_error(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused");
    post_idempotent(&app, "s", "bad key with spaces", "Hi", false)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(contents(&app, "s").await.len(), 4);
}

#[tokio::test]
async fn a_retry_on_another_server_stores_nothing_new() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let a = ragchat_server::app(state(engine(manager(&redis.url()).await), Auth::local()));
    let b = ragchat_server::app(state(engine(manager(&redis.url()).await), Auth::local()));
    let first = post_idempotent(&a, "x", "k-42", "What is a decision tree?", false).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let retry = post_idempotent(&b, "x", "k-42", "What is a decision tree?", false).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text());
    assert_eq!(retry.json(), first.json());
    let streamed = post_idempotent(&b, "x", "k-42", "What is a decision tree?", true).await;
    let events = parse_sse(&streamed.text());
    let done = events
        .iter()
        .find(|(name, _)| name == "done")
        .expect("done");
    assert_eq!(done.1, first.json()["answer"]);
    assert_eq!(contents(&a, "x").await.len(), 2);
    assert_eq!(contents(&b, "x").await.len(), 2);
}

/// Commands Redis ran, by name, from `INFO commandstats`.
fn command_calls(redis: &ragchat_testkit::RedisServer) -> Vec<(String, u64)> {
    redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("cmdstat_")?;
            let (name, stats) = rest.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .trim()
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

/// Calls of every command but the ones a probe of the test itself or a connection's
/// upkeep makes.
fn data_commands(redis: &ragchat_testkit::RedisServer) -> u64 {
    const UPKEEP: [&str; 5] = ["info", "ping", "hello", "client", "config"];
    command_calls(redis)
        .into_iter()
        .filter(|(name, _)| !UPKEEP.iter().any(|u| name.starts_with(u)))
        .map(|(_, calls)| calls)
        .sum()
}

#[tokio::test]
async fn readyz_asks_redis_at_most_once_a_second() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let app = ragchat_server::app(state(engine(manager(&redis.url()).await), Auth::local()));
    let ready = get(&app, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    redis.cli(&["CONFIG", "RESETSTAT"]);
    let polls = 200;
    let started = Instant::now();
    for _ in 0..polls {
        let reply = get(&app, "/readyz", None).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["ready"], Value::Bool(true));
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = data_commands(&redis);
    // One store probe per started second at most (plus the one already cached).
    let bound = (seconds.ceil() as u64 + 1) * 2;
    assert!(
        calls <= bound,
        "{polls} polls in {seconds:.1} s made {calls} Redis commands (bound {bound}): {:?}",
        command_calls(&redis)
    );
}
