//! Helpers shared by the server's integration tests: an index of the bundled corpus
//! (built once per test binary, reused across runs), engines over real stores, and
//! `oneshot` requests against the router; raw HTTP over real sockets in [`raw_http`].

#![allow(dead_code)]

pub(crate) mod raw_http;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use ragchat_memory::{open_store, ManagerConfig, SessionManager, StoreOptions};
use ragchat_rag::{
    Answer, AnswerRequest, Answerer, CorpusSource, ExtractiveAnswerer, Index, IngestOptions, Source,
};
use ragchat_server::auth::Auth;
use ragchat_server::{AppState, ChatEngine, EngineConfig, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

pub(crate) const ALICE_KEY: &str = "alice-key-0123456789abcdef";
pub(crate) const BOB_KEY: &str = "bob-key-0123456789abcdef";

/// The bundled corpus, indexed under the target dir (reused when unchanged).
pub(crate) fn index() -> Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ragchat-server-tests");
            Index::open_or_build(
                &dir,
                &CorpusSource::Bundled,
                &IngestOptions::default(),
                &|_| {},
            )
            .expect("index the bundled corpus")
            .0
        })
        .clone()
}

/// A manager over the store at `url`, without a journal.
pub(crate) async fn manager(url: &str) -> SessionManager {
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        lazy: false,
        ..StoreOptions::default()
    };
    let store = open_store(url, &opts).await.expect("open the store");
    SessionManager::new(store, ManagerConfig::default())
}

/// An engine with the offline extractive answerer, as `ragchat serve` makes it.
pub(crate) fn engine(memory: SessionManager) -> ChatEngine {
    engine_with(memory, Arc::new(ExtractiveAnswerer::for_index(&index())))
}

/// An engine with the given answerer.
pub(crate) fn engine_with(memory: SessionManager, answerer: Arc<dyn Answerer>) -> ChatEngine {
    ChatEngine::new(memory, index(), answerer, EngineConfig::default())
}

/// A keys file with alice and bob; the directory must outlive the state.
pub(crate) fn keys_auth(dir: &Path) -> Auth {
    let path = dir.join("keys.txt");
    std::fs::write(
        &path,
        format!("# test keys\n{ALICE_KEY} alice\n{BOB_KEY} bob\n"),
    )
    .expect("write keys");
    Auth::from_file(path).expect("keys parse")
}

/// State over `engine` with the default limits.
pub(crate) fn state(engine: ChatEngine, auth: Auth) -> AppState {
    let limit = engine.memory().config().max_content_bytes;
    AppState::new(engine, auth, ServerConfig::for_message_limit(limit))
}

/// A response, read whole.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status and our error shape with this code; returns the message.
    pub(crate) fn expect_error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().expect("a message");
        assert!(!message.is_empty());
        message.to_string()
    }
}

/// Builds a request; `body` is sent as is with `Content-Type: application/json`.
pub(crate) fn request(
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<String>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let body = match body {
        Some(text) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(text)
        }
        None => Body::empty(),
    };
    builder.body(body).expect("valid request")
}

/// Sends a request through the router (no socket).
pub(crate) async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("read body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

pub(crate) async fn get(app: &Router, uri: &str, key: Option<&str>) -> Reply {
    send(app, request(Method::GET, uri, key, None)).await
}

pub(crate) async fn post_message(
    app: &Router,
    session: &str,
    key: Option<&str>,
    content: &str,
) -> Reply {
    let body = serde_json::json!({ "content": content }).to_string();
    let uri = format!("/v1/sessions/{session}/messages");
    send(app, request(Method::POST, &uri, key, Some(body))).await
}

/// Parses a server-sent event stream into (event, data) pairs.
pub(crate) fn parse_sse(text: &str) -> Vec<(String, Value)> {
    let text = text.replace("\r\n", "\n");
    let mut events = Vec::new();
    for block in text.split("\n\n") {
        let mut name = String::from("message");
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            }
        }
        if !data.is_empty() {
            let value = serde_json::from_str(&data.join("\n"))
                .unwrap_or_else(|e| panic!("event {name} data is not JSON ({e}): {data:?}"));
            events.push((name, value));
        }
    }
    events
}

/// An answerer that streams `words` words, pausing `pause` after each, and cites one
/// source. Lets tests disconnect or shut down while an answer is being produced.
pub(crate) struct SlowAnswerer {
    pub words: usize,
    pub pause: Duration,
}

#[async_trait]
impl Answerer for SlowAnswerer {
    fn describe(&self) -> String {
        "slow".to_string()
    }

    async fn answer(
        &self,
        _request: &AnswerRequest,
        sink: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> ragchat_rag::Result<Answer> {
        let mut text = String::new();
        for i in 0..self.words {
            let word = format!("word{i} ");
            sink(&word);
            text.push_str(&word);
            tokio::time::sleep(self.pause).await;
        }
        Ok(Answer {
            text,
            sources: vec![Source {
                path: "slow.md".into(),
                heading: "Slow".into(),
                score: 1.0,
                line_start: 1,
                line_end: 2,
                conversation: None,
            }],
            ..Answer::default()
        })
    }
}
