//! The server on a real socket: a client that disconnects mid-answer, and a graceful
//! shutdown that lets a streaming turn finish.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use ragchat_server::auth::Auth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends a streaming turn over a raw connection and returns it, positioned after the
/// first `token` event (so the answer is being produced).
async fn start_streaming_turn(addr: std::net::SocketAddr, session: &str) -> (TcpStream, String) {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"content":"What is machine learning?"}"#;
    let head = format!(
        "POST /v1/sessions/{session}/messages HTTP/1.1\r\nHost: {addr}\r\n\
         Accept: text/event-stream\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("send request");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("event: token") {
        let n = conn.read(&mut buf).await.expect("read");
        assert!(n > 0, "connection closed before any token: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    (conn, seen)
}

async fn slow_server(words: usize) -> (std::net::SocketAddr, ragchat_server::AppState) {
    let memory = manager("memory://").await;
    let answerer = Arc::new(SlowAnswerer {
        words,
        pause: Duration::from_millis(20),
    });
    let state = state(engine_with(memory, answerer), Auth::local());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(ragchat_server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    (addr, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_answer_leaves_an_incomplete_answer() {
    let (addr, state) = slow_server(1000).await;
    let (conn, seen) = start_streaming_turn(addr, "gone").await;
    assert!(!seen.contains("event: done"), "{seen}");
    drop(conn);

    // The turn notices the closed stream, stores what was produced, and ends.
    let app = ragchat_server::app(state);
    let page = loop {
        let reply = get(&app, "/v1/sessions/gone/messages", None).await;
        if reply.status == StatusCode::OK {
            break reply.json();
        }
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{page}");
    assert_eq!(messages[0]["content"], "What is machine learning?");
    assert_eq!(messages[1]["status"], "incomplete");
    let partial = messages[1]["content"].as_str().unwrap();
    assert!(partial.starts_with("word0 "), "{partial}");
    assert!(
        !partial.contains("word999"),
        "the answer was cut short: {partial}"
    );

    // The turn stores what it produced, then counts itself: poll for the count.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = get(&app, "/metrics", None).await.text();
        if metrics.contains("ragchat_turn_seconds_count{outcome=\"cancelled\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_streaming_turn_finish() {
    let memory = manager("memory://").await;
    let answerer = Arc::new(SlowAnswerer {
        words: 15,
        pause: Duration::from_millis(20),
    });
    let state = state(engine_with(memory, answerer), Auth::local());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ragchat_server::serve(listener, state.clone(), async {
        let _ = stopped.await;
    }));

    let (mut conn, mut seen) = start_streaming_turn(addr, "finishing").await;
    stop.send(()).expect("server still running");
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.expect("read the rest");
    seen.push_str(&String::from_utf8_lossy(&rest));
    assert!(seen.contains("event: done"), "the stream completed: {seen}");
    server.await.expect("join").expect("serve returned Ok");

    // The listener is gone.
    assert!(TcpStream::connect(addr).await.is_err());
    let app = ragchat_server::app(state);
    let page = get(&app, "/v1/sessions/finishing/messages", None)
        .await
        .json();
    assert_eq!(page["messages"][1]["status"], "complete", "{page}");
    assert!(page["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("word14"));
}
