//! The HTTP API's JSON body handling: any body sent to `POST /v1/sessions/s/messages`
//! is answered with 200 or a client error (400, 413, 422), never a 5xx, and every client
//! error has the `{"error":{"code","message"}}` shape.
//!
//! The router is the real one (`ragchat_server::app`) over a `memory://` store, the
//! offline extractive answerer and an index of one small document, built once per
//! process; each input is sent through it with `oneshot`, no socket. Limits are small
//! (512-byte messages, 1 KiB bodies) so that both 413 paths are reachable within
//! libFuzzer's default 4 KiB inputs; a session keeps at most 50 messages, so a long run
//! that stores many turns costs the same per turn at the end as at the start.

#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use ragchat_memory::{open_store, ManagerConfig, SessionManager, StoreOptions};
use ragchat_rag::{CorpusSource, Document, ExtractiveAnswerer, Index, IngestOptions};
use ragchat_server::auth::Auth;
use ragchat_server::{AppState, ChatEngine, EngineConfig, ServerConfig};
use serde_json::Value;
use tokio::runtime::Runtime;
use tower::ServiceExt;

const URI: &str = "/v1/sessions/s/messages";
const MAX_MESSAGE_BYTES: usize = 512;
const MAX_BODY_BYTES: usize = 1024;

const DOCUMENT: &str = "# Fuzzing\n\nFuzzing sends many generated inputs to a program and \
watches for crashes. A fuzzer keeps the inputs that reach new code in its corpus.\n\n\
## Seeds\n\nA seed corpus gives the fuzzer valid examples to start from.\n";

struct Harness {
    runtime: Runtime,
    app: Router,
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let (status, body) = h.runtime.block_on(post(&h.app, data.to_vec()));
    check(status, &body, data);
});

fn check(status: StatusCode, body: &[u8], sent: &[u8]) {
    let shown = || {
        format!(
            "{status} for {:?}: {}",
            String::from_utf8_lossy(sent),
            String::from_utf8_lossy(body)
        )
    };
    let json: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", shown()));
    match status.as_u16() {
        200 => assert!(json["answer"]["content"].is_string(), "{}", shown()),
        400 | 413 | 422 => {
            let error = &json["error"];
            let has_text = |field: &str| error[field].as_str().is_some_and(|s| !s.is_empty());
            assert!(has_text("code") && has_text("message"), "{}", shown());
            assert_eq!(error.as_object().map(|o| o.len()), Some(2), "{}", shown());
        }
        _ => panic!("unexpected status {}", shown()),
    }
}

async fn post(app: &Router, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(URI)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("an in-memory body reads")
        .to_bytes();
    (status, bytes.to_vec())
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let app = runtime.block_on(build_app());
        let harness = Harness { runtime, app };
        // A harness that cannot answer a valid message would pass every input off as a
        // server error; fail at once instead.
        let body = br#"{"content":"what does a fuzzer keep?"}"#.to_vec();
        let (status, reply) = harness.runtime.block_on(post(&harness.app, body));
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&reply)
        );
        harness
    })
}

async fn build_app() -> Router {
    // The index is built in a temporary folder that is removed once the index is open:
    // its reader has mapped every segment file by then (it never reloads), so nothing
    // is left behind by the many processes a fuzzing session starts.
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let source = CorpusSource::Documents {
        name: "fuzz".to_string(),
        documents: vec![Document {
            path: "fuzzing.md".to_string(),
            text: DOCUMENT.to_string(),
        }],
    };
    let (index, _) =
        Index::open_or_build(data_dir.path(), &source, &IngestOptions::default(), &|_| {})
            .expect("index one document");
    drop(data_dir);

    let store = open_store("memory://", &StoreOptions::default())
        .await
        .expect("a memory store");
    let memory = SessionManager::new(
        store,
        ManagerConfig {
            max_content_bytes: MAX_MESSAGE_BYTES,
            max_messages: 50,
            ..ManagerConfig::default()
        },
    );
    let engine = ChatEngine::new(
        memory,
        index,
        Arc::new(ExtractiveAnswerer::new()),
        EngineConfig::default(),
    );
    let config = ServerConfig {
        max_body_bytes: MAX_BODY_BYTES,
        ..ServerConfig::for_message_limit(MAX_MESSAGE_BYTES)
    };
    ragchat_server::app(AppState::new(engine, Auth::local(), config))
}
