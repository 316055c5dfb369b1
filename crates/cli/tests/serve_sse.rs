//! Streaming through `ragchat serve --llm-url`: tokens reach the client while the LLM is
//! still producing the answer, and a client that disconnects mid-answer leaves the
//! partial answer stored as `incomplete` (and the LLM request is abandoned).
//!
//! The LLM is a stand-in: an in-test axum server speaking the chat-completions
//! streaming protocol, paced by the test.

mod serve_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::Value;
use serve_support::*;

/// Marks a question whose answer the stand-in holds after three deltas until released.
const HOLD: &str = "hold-then-finish";
/// Marks a question whose answer never ends (a delta every 50 ms, for a minute).
const ENDLESS: &str = "never-ending";

#[derive(Default)]
struct StandIn {
    release: tokio::sync::Notify,
    abandoned: AtomicBool,
}

/// Sets `abandoned` when dropped before `complete`: the response body was dropped
/// before it ended, i.e. the caller went away.
struct Abandoned {
    llm: Arc<StandIn>,
    completed: bool,
}

impl Abandoned {
    fn complete(&mut self) {
        self.completed = true;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if !self.completed {
            self.llm.abandoned.store(true, Ordering::SeqCst);
        }
    }
}

fn chunk(delta: &str) -> Result<Bytes, std::io::Error> {
    let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": delta}}]});
    Ok(Bytes::from(format!("data: {chunk}\n\n")))
}

async fn chat_completions(State(llm): State<Arc<StandIn>>, Json(body): Json<Value>) -> Response {
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string();
    let stream = if prompt.contains(HOLD) {
        let llm = Arc::clone(&llm);
        futures::stream::iter(["Gradient ", "descent ", "steps "].map(chunk))
            .chain(futures::stream::once(async move {
                llm.release.notified().await;
                chunk("downhill.")
            }))
            .chain(futures::stream::iter([Ok(Bytes::from("data: [DONE]\n\n"))]))
            .boxed()
    } else if prompt.contains(ENDLESS) {
        let guard = Abandoned {
            llm: Arc::clone(&llm),
            completed: false,
        };
        futures::stream::unfold((0u32, guard), |(i, mut guard)| async move {
            if i == 1200 {
                guard.complete();
                return None;
            }
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some((chunk(&format!("part{i} ")), (i + 1, guard)))
        })
        .boxed()
    } else {
        futures::stream::iter([chunk("Unscripted."), Ok(Bytes::from("data: [DONE]\n\n"))]).boxed()
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .expect("valid response")
}

/// Starts the stand-in; returns its `/v1` base URL.
async fn start_stand_in() -> (String, Arc<StandIn>) {
    let llm = Arc::new(StandIn::default());
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(Arc::clone(&llm));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), llm)
}

fn start_server(llm_url: &str) -> Server {
    Server::start(&[
        "--llm-url",
        llm_url,
        "--model",
        "stand-in",
        "--llm-timeout",
        "30",
    ])
}

async fn open_stream(server: &Server, session: &str, question: &str) -> reqwest::Response {
    let response = client()
        .post(format!("{}/v1/sessions/{session}/messages", server.url()))
        .header("accept", "text/event-stream")
        .json(&serde_json::json!({ "content": question }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    response
}

/// Reads the stream until `marker` has arrived; returns everything read.
async fn read_until(
    body: &mut (impl futures::Stream<Item = reqwest::Result<Bytes>> + Unpin),
    seen: &mut String,
    marker: &str,
) {
    while !seen.contains(marker) {
        let piece = body
            .next()
            .await
            .expect("stream ended early")
            .expect("read");
        seen.push_str(&String::from_utf8_lossy(&piece));
    }
}

/// `(event, data)` pairs of a complete SSE text.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).expect("JSON data"));
                }
            }
            Some((name?, data?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_arrive_while_the_llm_is_still_answering() {
    let (llm_url, llm) = start_stand_in().await;
    let server = start_server(&llm_url);
    let question = format!("{HOLD}: what is gradient descent?");
    let mut body = open_stream(&server, "streamed", &question)
        .await
        .bytes_stream();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, "event: token").await;
    // The stand-in has not finished the answer: nothing can be done yet.
    assert!(!seen.contains("event: done"), "{seen}");
    llm.release.notify_one();
    while let Some(piece) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&piece.expect("read")));
    }

    let events = events(&seen);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    assert_eq!(names[names.len() - 2], "sources", "{names:?}");
    assert!(
        names[..names.len() - 2].iter().all(|n| *n == "token"),
        "{names:?}"
    );
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "Gradient descent steps downhill.");
    let done = &events.last().unwrap().1;
    assert_eq!(done["content"], streamed);
    assert_eq!(done["status"], "complete");
    assert!(
        source_paths(done).contains(&"gradient-descent.md".to_string()),
        "{done}"
    );

    let page = get(
        &format!("{}/v1/sessions/streamed/messages", server.url()),
        None,
    )
    .await
    .json();
    assert_eq!(page["messages"][1], *done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_leaves_an_incomplete_answer() {
    let (llm_url, llm) = start_stand_in().await;
    let server = start_server(&llm_url);
    let question = format!("{ENDLESS}: tell me about neural networks");
    let mut body = open_stream(&server, "cut", &question).await.bytes_stream();
    let mut seen = String::new();
    read_until(&mut body, &mut seen, "part1 ").await;
    drop(body);

    let url = format!("{}/v1/sessions/cut/messages", server.url());
    let page = eventually(
        "the partial answer to be stored",
        Duration::from_secs(20),
        || async {
            let reply = get(&url, None).await;
            (reply.status == 200).then(|| reply.json())
        },
    )
    .await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{page}");
    assert_eq!(messages[0]["content"], question.as_str());
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["status"], "incomplete");
    let partial = messages[1]["content"].as_str().unwrap();
    assert!(partial.starts_with("part0 part1 "), "{partial}");
    assert!(!partial.contains("part1199"), "{partial}");
    eventually(
        "the LLM request to be abandoned",
        Duration::from_secs(20),
        || async { llm.abandoned.load(Ordering::SeqCst).then_some(()) },
    )
    .await;
}
