//! The server's limits on a real socket: slow and silent connections are closed, a
//! client that stops reading a stream does not hold its turn, a request past its
//! deadline gets 503, rate limits and the failed-authentication lockout answer 429 with
//! `Retry-After`, and `/readyz` shows a caller without a key only what a load balancer
//! needs. Bounds on waiting are derived from the configured timeouts with generous
//! slack, never from how fast this machine is.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::*;
use ragchat_rag::{Answer, AnswerRequest, Answerer};
use ragchat_server::auth::{Auth, LockoutConfig};
use ragchat_server::limits::HttpLimits;
use ragchat_server::ratelimit::RateLimitConfig;
use ragchat_server::{AppState, ChatEngine, ServerConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a test waits at most for something a timeout of `limit` should cause: the
/// timeout, plus slack for a machine saturated by other work.
fn patience(limit: Duration) -> Duration {
    limit * 3 + Duration::from_secs(30)
}

async fn serve(state: AppState) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(ragchat_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    addr
}

fn config(engine: &ChatEngine, edit: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut config = ServerConfig::for_message_limit(engine.memory().config().max_content_bytes);
    edit(&mut config);
    config
}

/// A whole HTTP/1.1 exchange on a fresh connection (`Connection: close`).
struct RawReply {
    status: u16,
    head: String,
    body: String,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.status, self.body))
    }
}

async fn raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> RawReply {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    RawReply {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Reads until the peer closes; `true` if it did within `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

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

const CAROL_KEY: &str = "carol-key-0123456789abcdef";

/// Alice and carol are limited in the keys file; bob follows the server's limits.
fn limited_keys(dir: &std::path::Path) -> Auth {
    let path = dir.join("keys.txt");
    std::fs::write(
        &path,
        format!(
            "{ALICE_KEY} alice turns-per-minute=1\n{BOB_KEY} bob\n{CAROL_KEY} carol requests-per-second=1\n"
        ),
    )
    .unwrap();
    Auth::from_file(path).expect("keys parse")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(manager("memory://").await);
    let config = config(&engine, |c| {
        c.rate_limits = RateLimitConfig {
            turns_per_minute: 0,
            requests_per_second: 1000,
        };
    });
    let state = AppState::new(engine, limited_keys(dir.path()), config);
    let addr = serve(state.clone()).await;
    let turn = r#"{"content":"What is a neural network?"}"#;

    // One turn a minute for alice: the second is refused before anything runs.
    let first = raw(
        addr,
        "POST",
        "/v1/sessions/s/messages",
        Some(ALICE_KEY),
        turn,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let second = raw(
        addr,
        "POST",
        "/v1/sessions/s/messages",
        Some(ALICE_KEY),
        turn,
    )
    .await;
    assert_eq!(second.status, 429, "{}", second.body);
    let error = &second.json()["error"];
    assert_eq!(error["code"], "rate_limited");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("1 chat turns per minute"),
        "{error}"
    );
    let wait: u64 = second
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let key = ragchat_memory::SessionKey::new("alice", "s").unwrap();
    assert_eq!(
        state.memory().history(&key).await.unwrap().len(),
        2,
        "the refused turn stored nothing"
    );

    // One request a second for carol: requests until one is refused; no more passed
    // than the limit allows in the time they took.
    let started = Instant::now();
    let mut passed = 0;
    let refused = loop {
        let reply = raw(addr, "GET", "/v1/sessions", Some(CAROL_KEY), "").await;
        match reply.status {
            200 => passed += 1,
            429 => break reply,
            other => panic!("{other}: {}", reply.body),
        }
        assert!(passed < 100, "carol was never limited");
    };
    let most = 1 + started.elapsed().as_secs_f64().ceil() as u32;
    assert!(
        (1..=most).contains(&passed),
        "{passed} passed, at most {most} allowed"
    );
    assert_eq!(refused.json()["error"]["code"], "rate_limited");
    assert!(refused.header("retry-after").is_some());

    // Bob has his own buckets and the server's limits.
    let bob = raw(addr, "POST", "/v1/sessions/s/messages", Some(BOB_KEY), turn).await;
    assert_eq!(bob.status, 200, "{}", bob.body);
    let bob = raw(addr, "POST", "/v1/sessions/s/messages", Some(BOB_KEY), turn).await;
    assert_eq!(bob.status, 200, "{}", bob.body);

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    assert!(
        metrics.contains("ragchat_rate_limited_total{limit=\"turns\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_keeps_failing_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(manager("memory://").await);
    let config = config(&engine, |c| {
        c.lockout = LockoutConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
        };
    });
    let addr = serve(AppState::new(engine, keys_auth(dir.path()), config)).await;
    for key in [
        Some("wrong-key-0123456789abc"),
        None,
        Some("another-wrong-key-01234"),
    ] {
        let reply = raw(addr, "GET", "/v1/sessions", key, "").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }
    // Locked out now, even with a good key.
    let locked = raw(addr, "GET", "/v1/sessions", Some(ALICE_KEY), "").await;
    assert_eq!(locked.status, 429, "{}", locked.body);
    assert_eq!(locked.json()["error"]["code"], "auth_locked");
    let wait: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    for expected in [
        "ragchat_auth_failures_total{reason=\"unknown\"} 2",
        "ragchat_auth_failures_total{reason=\"missing\"} 1",
        "ragchat_auth_lockouts_total 1",
        "ragchat_auth_locked_refusals_total 1",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_metrics_without_a_key_show_only_what_monitoring_needs() {
    let dir = tempfile::tempdir().unwrap();
    let memory = manager("memory://").await;
    let answerer = Arc::new(Named(
        "openai:secret-model at http://***@llm.internal/v1".into(),
    ));
    let engine = engine_with(memory, answerer);
    let config = config(&engine, |_| {});
    let addr = serve(AppState::new(engine, keys_auth(dir.path()), config)).await;

    let public = raw(addr, "GET", "/readyz", None, "").await;
    assert_eq!(public.status, 200);
    let body = public.json();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["mode", "ready", "warning_count"], "{body}");
    let wrong = raw(addr, "GET", "/readyz", Some("wrong-key-0123456789abc"), "").await;
    assert_eq!(wrong.json(), body, "a wrong key sees no more");

    let detailed = raw(addr, "GET", "/readyz", Some(ALICE_KEY), "")
        .await
        .json();
    assert_eq!(detailed["store"], "memory://");
    assert!(detailed["answerer"]
        .as_str()
        .unwrap()
        .contains("secret-model"));

    let metrics = raw(addr, "GET", "/metrics", None, "").await.body;
    for secret in ["secret-model", "llm.internal", "memory://", ALICE_KEY] {
        assert!(!metrics.contains(secret), "/metrics shows {secret}");
    }
}

/// An answerer that only has a name.
struct Named(String);

#[async_trait]
impl Answerer for Named {
    fn describe(&self) -> String {
        self.0.clone()
    }

    async fn answer(
        &self,
        _request: &AnswerRequest,
        _sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> ragchat_rag::Result<Answer> {
        Ok(Answer {
            text: "named".into(),
            sources: Vec::new(),
        })
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
