//! Paging over HTTP (issue 11): the session list comes in pages with a cursor, bad
//! cursors and limits are clear 400s, and the export streams over a real socket.

mod common;

use axum::http::StatusCode;
use common::*;
use ragchat_memory::{Message, SessionKey};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn the_session_list_comes_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let memory = manager(&format!("sqlite://{}", db.display())).await;
    for i in 0..5 {
        let key = SessionKey::new("alice", format!("s{i}")).unwrap();
        memory
            .append(&key, vec![Message::user(format!("hello {i}"))])
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let app = ragchat_server::app(state(engine(memory), keys_auth(dir.path())));
    let mut seen = Vec::new();
    let mut uri = "/v1/sessions?limit=2".to_string();
    loop {
        let page = get(&app, &uri, Some(ALICE_KEY)).await.json();
        let sessions = page["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 2, "{page}");
        seen.extend(
            sessions
                .iter()
                .map(|s| s["session"].as_str().unwrap().to_string()),
        );
        match &page["next_cursor"] {
            Value::String(c) => uri = format!("/v1/sessions?limit=2&cursor={c}"),
            Value::Null => break,
            other => panic!("next_cursor is {other}"),
        }
        assert!(seen.len() <= 5, "paging does not end: {seen:?}");
    }
    assert_eq!(
        seen,
        ["s4", "s3", "s2", "s1", "s0"],
        "newest first, each once"
    );
    for bad in [
        "/v1/sessions?limit=0",
        "/v1/sessions?limit=1001",
        "/v1/sessions?cursor=nonsense",
        "/v1/sessions/s1/messages?after=-3",
        "/v1/sessions/s1/messages?limit=0",
    ] {
        get(&app, bad, Some(ALICE_KEY))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    let bobs = get(&app, "/v1/sessions", Some(BOB_KEY)).await.json();
    assert_eq!(bobs["sessions"], serde_json::json!([]));
    assert_eq!(bobs["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_streams_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let memory = manager(&format!("sqlite://{}", db.display())).await;
    // More messages than one export page holds, in two sessions.
    let long = SessionKey::new("alice", "long").unwrap();
    let batch: Vec<Message> = (0..2500)
        .map(|i| Message::user(format!("line {i:05}")))
        .collect();
    for chunk in batch.chunks(500) {
        memory.append(&long, chunk.to_vec()).await.unwrap();
    }
    let short = SessionKey::new("alice", "short").unwrap();
    memory
        .append(&short, vec![Message::user("only one")])
        .await
        .unwrap();
    let state = state(engine(memory), keys_auth(dir.path()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(ragchat_server::serve(
        listener,
        state,
        std::future::pending(),
    ));

    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/export HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ALICE_KEY}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("transfer-encoding: chunked") && !head.contains("content-length"),
        "the export is not streamed: {head}"
    );
    let json = dechunk(body);
    let export: Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{e}: {}", &json[..200.min(json.len())]));
    assert_eq!(export["user"], "alice");
    let sessions = export["sessions"].as_array().unwrap();
    let names: Vec<&str> = sessions
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["short", "long"]);
    let messages = sessions[1]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2500);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m["content"], format!("line {i:05}"));
    }
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}
