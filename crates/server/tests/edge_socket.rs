//! The server's HTTP limits on a real socket: slow and silent connections are closed,
//! a client that stops reading a stream does not hold its turn, a request past its
//! deadline gets 503, and API answers are not cached. Bounds on waiting are derived
//! from the configured timeouts with generous slack, never from how fast this machine
//! is.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::raw_http::*;
use common::*;
use ragchat_rag::{Answer, AnswerRequest, Answerer};
use ragchat_server::auth::Auth;
use ragchat_server::limits::HttpLimits;
use ragchat_server::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_closed() {
    let engine = engine(manager("memory://").await);
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
    };
    let config = config(&engine, |c| c.limits = limits);
    let addr = serve(AppState::new(engine, Auth::local(), config)).await;

    // 200 slowloris connections: a request line, then a header byte every 200 ms.
    let slow: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.expect("connect");
                conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .await
                    .expect("send");
                let started = Instant::now();
                for byte in b"X-Slow: ".iter().cycle() {
                    if conn.write_all(&[*byte]).await.is_err() {
                        return true; // closed by the server
                    }
                    if started.elapsed() > patience(limits.header_read_timeout) {
                        return false;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                false
            })
        })
        .collect();
    // A silent connection, and one that sends nothing after its first request.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut kept_alive = TcpStream::connect(addr).await.expect("connect");
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();

    // Meanwhile the server answers everyone else.
    let health = raw(addr, "GET", "/healthz", None, "").await;
    assert_eq!(health.status, 200, "{}", health.body);

    assert!(closed_within(&mut silent, patience(limits.header_read_timeout)).await);
    assert!(closed_within(&mut kept_alive, patience(limits.header_read_timeout)).await);
    let mut closed = 0;
    for task in slow {
        if task.await.expect("join") {
            closed += 1;
        }
    }
    assert_eq!(closed, 200, "every slowloris connection is closed");
}

/// Streams 64 KiB deltas until cancelled (at most `cap` bytes), counting what it sent.
struct Flood {
    sent: Arc<AtomicUsize>,
    cap: usize,
}

#[async_trait]
impl Answerer for Flood {
    fn describe(&self) -> String {
        "flood".into()
    }

    async fn answer(
        &self,
        _request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> ragchat_rag::Result<Answer> {
        let chunk = "x".repeat(64 * 1024);
        while self.sent.load(Ordering::Relaxed) < self.cap {
            sink(&chunk);
            self.sent.fetch_add(chunk.len(), Ordering::Relaxed);
            // Pace the flood, so a cancelled turn notices between two deltas.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Answer {
            text: "the whole flood".into(),
            sources: Vec::new(),
            fallback: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_a_stream_does_not_hold_its_turn() {
    let sent = Arc::new(AtomicUsize::new(0));
    // Far more than socket buffers hold, and at 2 ms a delta far longer to produce
    // than the idle timeout plus its slack.
    let cap = 3000 * 64 * 1024;
    let answerer = Arc::new(Flood {
        sent: Arc::clone(&sent),
        cap,
    });
    let engine = engine_with(manager("memory://").await, answerer);
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(30),
    };
    let config = config(&engine, |c| c.limits = limits);
    let state = AppState::new(engine, Auth::local(), config);
    let addr = serve(state.clone()).await;

    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let body = r#"{"content":"What is machine learning?"}"#;
    let request = format!(
        "POST /v1/sessions/flood/messages HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 64];
    let n = conn.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // ... and the client reads no more.

    let app = ragchat_server::app(state);
    let page = eventually(patience(limits.idle_timeout), || async {
        let page = get(&app, "/v1/sessions/flood/messages", None).await;
        (page.status == 200).then(|| page.json())
    })
    .await
    .expect("the turn was stored");
    assert_eq!(
        page["messages"][1]["status"],
        "incomplete",
        "the stalled stream was cut: {}",
        page["messages"][1]["content"]
            .as_str()
            .map(str::len)
            .unwrap_or(0)
    );
    assert!(
        sent.load(Ordering::Relaxed) < cap,
        "the answer stopped early"
    );
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_gets_503_and_api_answers_are_not_cached() {
    let engine = engine(manager("memory://").await);
    let limits = HttpLimits {
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(60),
        request_timeout: Duration::from_secs(1),
    };
    let config = config(&engine, |c| c.limits = limits);
    let addr = serve(AppState::new(engine, Auth::local(), config)).await;

    // A body that never arrives in full keeps the handler waiting.
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(
        b"POST /v1/sessions/s/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"content\":",
    )
    .await
    .unwrap();
    let mut reply = Vec::new();
    let read = tokio::time::timeout(patience(limits.request_timeout), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&reply).contains("\r\n\r\n{") {
            let n = conn.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer past the deadline");
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after:"), "{text}");
    assert!(text.contains("\"timeout\""), "{text}");

    let listed = raw(addr, "GET", "/v1/sessions", None, "").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        listed.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    let ready = raw(addr, "GET", "/readyz", None, "").await;
    assert_eq!(ready.header("cache-control").as_deref(), Some("no-store"));
    let missing = raw(addr, "GET", "/v1/nothing-here", None, "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}
