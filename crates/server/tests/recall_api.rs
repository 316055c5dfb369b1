//! Recall in answers over a real socket, on SQLite and on PostgreSQL (a harness server;
//! skipped with a note where PostgreSQL is not installed), with recall across
//! conversations enabled for the deployment: a turn's JSON and its event stream say
//! what was recalled, the answer cites the recalled message as a conversation, each of
//! two users only ever recalls their own messages, the sources route points a recalled
//! citation at its conversation, and a deleted conversation is recalled no more.

mod common;

use std::net::SocketAddr;

use common::raw_http::{raw, serve, RawReply};
use common::*;
use ragchat_server::{ChatEngine, EngineConfig, RecallConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(url: &str, keys: &std::path::Path) -> SocketAddr {
    let memory = manager(url).await;
    let answerer = std::sync::Arc::new(ragchat_rag::ExtractiveAnswerer::for_index(&index()));
    let config = EngineConfig {
        recall: RecallConfig {
            across: true,
            ..RecallConfig::default()
        },
        ..EngineConfig::default()
    };
    let engine = ChatEngine::new(memory, index(), answerer, config);
    serve(state(engine, keys_auth(keys))).await
}

async fn say(addr: SocketAddr, key: &str, session: &str, text: &str) -> Value {
    let body = serde_json::json!({ "content": text }).to_string();
    let path = format!("/v1/sessions/{session}/messages");
    let reply = raw(addr, "POST", &path, Some(key), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// The same turn streamed: the raw event-stream body.
async fn say_streamed(addr: SocketAddr, key: &str, session: &str, text: &str) -> RawReply {
    let body = serde_json::json!({ "content": text }).to_string();
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST /v1/sessions/{session}/messages HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(request.as_bytes()).await.expect("send");
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).await.expect("read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    RawReply {
        status: head.split_whitespace().nth(1).unwrap().parse().unwrap(),
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn ids(values: &Value) -> Vec<String> {
    values
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v["message_id"].as_str().expect("an id").to_string())
        .collect()
}

async fn recall_on(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let addr = server(url, dir.path()).await;
    let alice_ferry = say(
        addr,
        ALICE_KEY,
        "trip",
        "Is the zanzibar ferry slow at dawn?",
    )
    .await;
    let alice_ferry_id = alice_ferry["user_message"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = say(
        addr,
        BOB_KEY,
        "trip",
        "My zanzibar ferry ticket number is 4471",
    )
    .await;
    let bob_id = bob["user_message"]["id"].as_str().unwrap().to_string();

    // Alice, in another conversation, asks back: her message is recalled and cited.
    let turn = say(
        addr,
        ALICE_KEY,
        "work",
        "What did I ask about the zanzibar ferry?",
    )
    .await;
    let recalled = ids(&turn["recalled"]);
    assert!(recalled.contains(&alice_ferry_id), "{turn}");
    assert!(
        !recalled.contains(&bob_id),
        "alice recalled bob's message: {turn}"
    );
    let answer = &turn["answer"];
    assert_eq!(
        answer["content"].as_str().unwrap(),
        format!(
            "In conversation `trip` on {} you asked: \"Is the zanzibar ferry slow at dawn?\" [1]",
            &turn["recalled"][0]["created_at"].as_str().unwrap()[..10]
        )
    );
    let cited = &answer["sources"][0]["conversation"];
    assert_eq!(cited["session"], "trip");
    assert_eq!(cited["message_id"].as_str().unwrap(), alice_ferry_id);
    assert_eq!(cited["role"], "user");

    // The sources route says where a recalled citation is.
    let answer_id = answer["id"].as_str().unwrap();
    let path = format!("/v1/sessions/work/messages/{answer_id}/sources/1");
    let reply = raw(addr, "GET", &path, Some(ALICE_KEY), "").await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("/v1/sessions/trip/messages?after=0"),
        "{message}"
    );

    // Bob asks the same: only his own message can come back, never alice's.
    let turn = say(
        addr,
        BOB_KEY,
        "work",
        "What did I ask about the zanzibar ferry?",
    )
    .await;
    let recalled = ids(&turn["recalled"]);
    assert!(
        !recalled.contains(&alice_ferry_id),
        "bob recalled alice's message: {turn}"
    );
    assert!(recalled.contains(&bob_id), "{turn}");
    assert!(
        turn["answer"]["content"].as_str().unwrap().contains("4471"),
        "{turn}"
    );

    // Streamed, the recalled messages come as their own event before the sources.
    let reply = say_streamed(
        addr,
        ALICE_KEY,
        "work2",
        "Did I ask about the zanzibar ferry?",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let recalled_at = reply
        .body
        .find("event: recalled")
        .expect("a recalled event");
    let sources_at = reply.body.find("event: sources").expect("a sources event");
    assert!(recalled_at < sources_at, "{}", reply.body);
    assert!(
        reply.body[recalled_at..sources_at].contains(&alice_ferry_id),
        "{}",
        reply.body
    );

    // Deleting the conversation removes it from recall at once.
    let reply = raw(addr, "DELETE", "/v1/sessions/trip", Some(ALICE_KEY), "").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let turn = say(
        addr,
        ALICE_KEY,
        "work3",
        "What did I ask about the zanzibar ferry?",
    )
    .await;
    assert!(!ids(&turn["recalled"]).contains(&alice_ferry_id), "{turn}");
    assert!(
        !turn["answer"]["content"]
            .as_str()
            .unwrap()
            .contains("slow at dawn"),
        "{turn}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    recall_on(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_over_http_on_postgres() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    recall_on(&server.create_database("recall_api")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_server_recalls_only_within_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let memory = manager(&url).await;
    let addr = serve(state(engine(memory), keys_auth(dir.path()))).await;
    say(
        addr,
        ALICE_KEY,
        "trip",
        "Is the zanzibar ferry slow at dawn?",
    )
    .await;
    let turn = say(
        addr,
        ALICE_KEY,
        "work",
        "What did I ask about the zanzibar ferry?",
    )
    .await;
    assert_eq!(turn["recalled"], serde_json::json!([]), "{turn}");
    assert_eq!(
        turn["answer"]["content"],
        "I couldn't find that in our earlier conversations."
    );
}
