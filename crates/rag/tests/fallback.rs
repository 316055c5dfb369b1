//! `FallbackAnswerer`: an LLM answerer that fails (a closed port, a real HTTP server answering
//! 503, a stream that breaks) is backed by the offline extractive answerer, and says so.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ragchat_rag::{
    Answer, AnswerOptions, AnswerRequest, Answerer, Chunk, ExtractiveAnswerer, FallbackAnswerer,
    Hit, OpenAiAnswerer, OpenAiConfig, RagError,
};

fn hits() -> Vec<Hit> {
    vec![Hit::new(
        Chunk {
            path: "gd.md".into(),
            title: "Gradient Descent".into(),
            heading: "Gradient Descent".into(),
            line_start: 1,
            line_end: 2,
            text: "Gradient descent is an algorithm that lowers the loss step by step.".into(),
        },
        5.0,
    )]
}

fn request(question: &str) -> AnswerRequest {
    AnswerRequest {
        question: question.into(),
        history: Vec::new(),
        hits: hits(),
        recalled: Vec::new(),
    }
}

/// A chat-completions endpoint that always answers with `reply`; returns its base URL.
async fn endpoint(reply: fn() -> Response) -> String {
    let app = Router::new().route("/v1/chat/completions", post(move || async move { reply() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{address}/v1")
}

/// A port nothing listens on: bound, then closed.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}/v1")
}

fn with_fallback(base_url: &str) -> FallbackAnswerer {
    let mut config = OpenAiConfig::new(base_url, "m");
    config.retry_backoff = Duration::from_millis(5);
    config.connect_timeout = Duration::from_secs(2);
    config.timeout = Duration::from_secs(5);
    let llm = OpenAiAnswerer::new(config).expect("valid config");
    FallbackAnswerer::new(Arc::new(llm), Arc::new(ExtractiveAnswerer::new()))
}

async fn ask(answerer: &FallbackAnswerer, question: &str) -> (Result<Answer, RagError>, String) {
    let mut streamed = String::new();
    let result = answerer
        .answer(&request(question), &mut |delta| streamed.push_str(delta))
        .await;
    (result, streamed)
}

#[tokio::test]
async fn an_unreachable_endpoint_is_answered_offline_and_flagged() {
    let answerer = with_fallback(&closed_port().await);
    let (result, streamed) = ask(&answerer, "What is gradient descent?").await;
    let answer = result.expect("the offline answerer answers");
    let offline = ExtractiveAnswerer::new().compose(&request("What is gradient descent?"));
    assert_eq!(answer.text, offline.text);
    assert_eq!(
        streamed, answer.text,
        "only the offline answer was streamed"
    );
    let notice = answer.fallback.expect("the answer says it fell back");
    assert!(notice.contains("is unreachable"), "{notice}");
    assert!(notice.contains("offline"), "{notice}");
    assert_eq!(notice.lines().count(), 1);
    assert!(answerer.describe().contains("falls back to extractive"));
}

#[tokio::test]
async fn an_endpoint_failing_after_its_retries_is_answered_offline() {
    let url = endpoint(|| {
        let body = r#"{"error":{"message":"overloaded"}}"#;
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    })
    .await;
    let (result, _) = ask(&with_fallback(&url), "What is gradient descent?").await;
    let answer = result.expect("the offline answerer answers");
    assert!(
        answer.text.starts_with("Gradient descent is"),
        "{}",
        answer.text
    );
    let notice = answer.fallback.expect("flagged");
    assert!(notice.contains("HTTP 503"), "{notice}");
}

#[tokio::test]
async fn a_working_endpoint_is_not_flagged() {
    let url = endpoint(|| {
        let body = r#"{"choices":[{"message":{"role":"assistant","content":"From the model."}}]}"#;
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    })
    .await;
    let (result, streamed) = ask(&with_fallback(&url), "What is gradient descent?").await;
    let answer = result.expect("answers");
    assert_eq!(answer.text, "From the model.");
    assert_eq!(streamed, "From the model.");
    assert_eq!(answer.fallback, None);
}

#[tokio::test]
async fn a_stream_broken_after_it_started_stays_an_error() {
    let url = endpoint(|| {
        let chunk = r#"data: {"choices":[{"delta":{"content":"Half an"}}]}"#;
        let pieces: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(format!("{chunk}\n\n"))),
            Err(std::io::Error::other("connection reset")),
        ];
        // Pause before breaking, so the first delta reaches the client first.
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
    })
    .await;
    let (result, streamed) = ask(&with_fallback(&url), "What is gradient descent?").await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(
        streamed, "Half an",
        "nothing offline was glued to the partial answer"
    );
}

#[tokio::test]
async fn small_talk_never_waits_for_the_model() {
    // The endpoint is unreachable, yet a greeting is answered without trying it: no notice.
    let answerer = with_fallback(&closed_port().await);
    let (result, _) = ask(&answerer, "Thanks!").await;
    let answer = result.expect("answers");
    assert!(answer.text.starts_with("You're welcome"), "{}", answer.text);
    assert_eq!(answer.fallback, None);
}

#[tokio::test]
async fn sampling_options_and_the_model_name_reach_the_model_through_the_fallback() {
    // The endpoint answers with the temperature and max_tokens it was sent.
    let app = Router::new().route(
        "/v1/chat/completions",
        post(|body: Bytes| async move {
            let sent: serde_json::Value = serde_json::from_slice(&body).expect("JSON request");
            let content = format!(
                "temperature {} max_tokens {}",
                sent["temperature"], sent["max_tokens"]
            );
            let reply = serde_json::json!({
                "choices": [{"message": {"role": "assistant", "content": content}}]
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                reply.to_string(),
            )
                .into_response()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address: SocketAddr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let answerer = with_fallback(&format!("http://{address}/v1"));

    let options = AnswerOptions {
        temperature: Some(0.25),
        max_tokens: Some(77),
    };
    let answer = answerer
        .answer_with(&request("What is gradient descent?"), &options, &mut |_| {})
        .await
        .expect("answers");
    assert_eq!(answer.text, "temperature 0.25 max_tokens 77");
    assert_eq!(answerer.upstream_model().as_deref(), Some("m"));
}
