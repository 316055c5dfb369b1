//! A real third-party client, the `async-openai` crate, against a `ragchat serve` process
//! whose conversations live in a SQLite file in its data dir: a non-streaming and a
//! streaming chat of three turns each, resending the whole history as the protocol's
//! clients do, and a chat that names its session (`X-Session-Id`) and sends only the new
//! message. The server is killed (SIGKILL) and started again after the second turns.
//!
//! Checked: answers arrive, with `[n]` markers and the `sources` extra field; the stored
//! conversations are exactly the turns sent, one session per chat, the same before and
//! after the restart; and the named chat's third turn ("Continue") is answered from the
//! context the store kept through the restart.

mod openai_support;
mod serve_support;

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    CreateChatCompletionRequest, CreateChatCompletionRequestArgs, FinishReason,
};
use async_openai::Client;
use futures::StreamExt;
use serde_json::Value;
use serve_support::*;

const SYSTEM: &str = "Answer from the documents, with citations.";

fn client(base: &str, session: Option<&str>) -> Client<OpenAIConfig> {
    let mut config = OpenAIConfig::new()
        .with_api_base(format!("{base}/v1"))
        .with_api_key(ALICE_KEY);
    if let Some(session) = session {
        config = config
            .with_header("X-Session-Id", session)
            .expect("a valid header");
    }
    Client::with_config(config)
}

/// A conversation as the client keeps it.
#[derive(Default)]
struct Chat {
    messages: Vec<ChatCompletionRequestMessage>,
    /// `(role, content)`, to compare with what the server stored.
    transcript: Vec<(String, String)>,
}

impl Chat {
    fn with_system() -> Chat {
        let mut chat = Chat::default();
        chat.messages.push(
            ChatCompletionRequestSystemMessageArgs::default()
                .content(SYSTEM)
                .build()
                .expect("system message")
                .into(),
        );
        chat.transcript.push(("system".into(), SYSTEM.into()));
        chat
    }

    fn ask(&mut self, question: &str) {
        self.messages.push(
            ChatCompletionRequestUserMessageArgs::default()
                .content(question)
                .build()
                .expect("user message")
                .into(),
        );
        self.transcript.push(("user".into(), question.into()));
    }

    fn answered(&mut self, answer: &str) {
        self.messages.push(
            ChatCompletionRequestAssistantMessageArgs::default()
                .content(answer)
                .build()
                .expect("assistant message")
                .into(),
        );
        self.transcript.push(("assistant".into(), answer.into()));
    }

    fn request(&self, stream: bool) -> CreateChatCompletionRequest {
        CreateChatCompletionRequestArgs::default()
            .model("ragchat")
            .messages(self.messages.clone())
            .stream(stream)
            .build()
            .expect("request")
    }
}

fn assert_cites(answer: &str) {
    assert!(
        answer.contains("[1]"),
        "the answer carries citation markers: {answer}"
    );
}

/// A non-streamed turn with the crate's own types.
async fn typed_turn(client: &Client<OpenAIConfig>, chat: &mut Chat, question: &str) -> String {
    chat.ask(question);
    let response = client
        .chat()
        .create(chat.request(false))
        .await
        .unwrap_or_else(|e| panic!("{question}: {e}"));
    assert_eq!(response.object, "chat.completion");
    assert_eq!(response.choices.len(), 1);
    assert_eq!(response.choices[0].finish_reason, Some(FinishReason::Stop));
    let usage = response.usage.expect("usage");
    assert!(usage.completion_tokens > 0 && usage.prompt_tokens > 0);
    let answer = response.choices[0]
        .message
        .content
        .clone()
        .expect("content");
    assert_cites(&answer);
    chat.answered(&answer);
    answer
}

/// A non-streamed turn read as raw JSON, for ragchat's extra fields; returns the session.
async fn raw_turn(client: &Client<OpenAIConfig>, chat: &mut Chat, question: &str) -> String {
    chat.ask(question);
    let response: Value = client
        .chat()
        .create_byot(chat.request(false))
        .await
        .unwrap_or_else(|e| panic!("{question}: {e}"));
    let answer = response["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    assert_cites(&answer);
    let sources = response["sources"].as_array().expect("sources");
    assert!(!sources.is_empty(), "{response}");
    assert!(sources[0]["path"].as_str().unwrap().ends_with(".md"));
    chat.answered(&answer);
    response["session_id"]
        .as_str()
        .expect("session_id")
        .to_string()
}

/// A streamed turn with the crate's chunk types; returns the answer.
async fn streamed_turn(client: &Client<OpenAIConfig>, chat: &mut Chat, question: &str) -> String {
    chat.ask(question);
    let mut stream = client
        .chat()
        .create_stream(chat.request(true))
        .await
        .unwrap_or_else(|e| panic!("{question}: {e}"));
    let mut answer = String::new();
    let mut chunks = 0;
    let mut finished = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("{question}: chunk {chunks}: {e}"));
        assert_eq!(chunk.object, "chat.completion.chunk");
        chunks += 1;
        for choice in &chunk.choices {
            if let Some(text) = &choice.delta.content {
                answer.push_str(text);
            }
            finished |= choice.finish_reason == Some(FinishReason::Stop);
        }
    }
    assert!(finished, "a chunk says stop");
    assert!(
        chunks >= 4,
        "the answer streamed in pieces: {chunks} chunks"
    );
    assert_cites(&answer);
    chat.answered(&answer);
    answer
}

/// A streamed turn read as raw JSON: the finish chunk carries the sources; returns the
/// session.
async fn raw_streamed_turn(
    client: &Client<OpenAIConfig>,
    chat: &mut Chat,
    question: &str,
) -> String {
    chat.ask(question);
    let mut stream = client
        .chat()
        .create_stream_byot::<_, Value>(chat.request(true))
        .await
        .unwrap_or_else(|e| panic!("{question}: {e}"));
    let mut answer = String::new();
    let mut session = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("{question}: {e}"));
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            answer.push_str(text);
        }
        if chunk["choices"][0]["finish_reason"] == "stop" {
            assert!(
                !chunk["sources"].as_array().expect("sources").is_empty(),
                "{chunk}"
            );
            session = chunk["session_id"].as_str().map(str::to_string);
        }
    }
    assert_cites(&answer);
    chat.answered(&answer);
    session.expect("the finish chunk names the session")
}

#[tokio::test]
async fn async_openai_chats_survive_a_server_restart() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let mut server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let base = server.url();

    let models = client(&base, None).models().list().await.expect("models");
    assert_eq!(models.data[0].id, "ragchat");

    let plain = client(&base, None);
    let mut a = Chat::with_system();
    typed_turn(&plain, &mut a, "What is machine learning?").await;
    let a_session = raw_turn(&plain, &mut a, "How does it learn?").await;

    let mut b = Chat::default();
    streamed_turn(&plain, &mut b, "What is overfitting?").await;
    let b_session = raw_streamed_turn(&plain, &mut b, "How do I avoid it?").await;

    let named = client(&base, Some("rust-memory"));
    let mut c = Chat::default();
    let first = typed_turn(&named, &mut c, "What is gradient descent?").await;
    assert!(!first.is_empty());

    server.restart();
    // The killed server's keep-alive connections died with it: new clients, as an
    // application reconnecting after a connection error would have.
    let plain = client(&base, None);
    let named = client(&base, Some("rust-memory"));

    typed_turn(&plain, &mut a, "What about neural networks?").await;
    streamed_turn(&plain, &mut b, "Explain cross-validation.").await;
    // Only the new message: the context must come from what the store kept.
    let mut only_new = Chat::default();
    let continued = typed_turn(&named, &mut only_new, "Continue").await;
    assert!(
        continued.contains("What is gradient descent?"),
        "the stored context survived the restart: {continued}"
    );
    c.ask("Continue");
    c.answered(&continued);

    // Resent once more, the raw way, both chats still name their sessions.
    assert_eq!(
        raw_turn(&plain, &mut a, "What is a transformer?").await,
        a_session
    );
    assert_eq!(
        raw_streamed_turn(&plain, &mut b, "What is a random forest?").await,
        b_session
    );

    let stored = openai_support::stored(&base, Some(ALICE_KEY)).await;
    assert_eq!(stored.len(), 3, "one session per chat: {:?}", stored.keys());
    assert_eq!(
        stored[&a_session], a.transcript,
        "chat a: exactly the turns sent"
    );
    assert_eq!(
        stored[&b_session], b.transcript,
        "chat b: exactly the turns sent"
    );
    assert_eq!(stored["rust-memory"], c.transcript, "the named chat");
    assert_eq!(a.transcript.len(), 1 + 2 * 4);
    assert_eq!(b.transcript.len(), 2 * 4);
}
