//! `GET /v1/search` over a real socket, on SQLite and on PostgreSQL (a harness server;
//! skipped with a note where PostgreSQL is not installed): each of two users, with
//! conversations of the same names, finds only their own messages, on every page and
//! with every filter; delete and `DELETE /v1/me` remove hits at once; bad queries are
//! 400s; a store that cannot search answers 501.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::raw_http::{raw, serve, RawReply};
use common::*;
use serde_json::Value;

async fn server(url: &str, keys: &std::path::Path) -> SocketAddr {
    let memory = manager(url).await;
    serve(state(engine(memory), keys_auth(keys))).await
}

async fn say(addr: SocketAddr, key: &str, session: &str, text: &str) {
    let body = serde_json::json!({ "content": text }).to_string();
    let path = format!("/v1/sessions/{session}/messages");
    let reply = raw(addr, "POST", &path, Some(key), &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn search(addr: SocketAddr, key: &str, query: &str) -> RawReply {
    raw(addr, "GET", &format!("/v1/search?{query}"), Some(key), "").await
}

/// Every hit of a search, following `next_cursor` pages of `limit`.
async fn all_hits(addr: SocketAddr, key: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut hits = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut q = format!("{query}&limit={limit}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let reply = search(addr, key, &q).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        hits.extend(body["hits"].as_array().expect("hits").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return hits,
        }
    }
    panic!("paging did not end");
}

fn sessions_of(hits: &[Value]) -> HashSet<String> {
    hits.iter()
        .map(|h| h["session"].as_str().unwrap().to_string())
        .collect()
}

async fn two_users_on(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let addr = server(url, dir.path()).await;
    say(
        addr,
        ALICE_KEY,
        "trip",
        "Which zanzibar ferry leaves at dawn?",
    )
    .await;
    say(
        addr,
        ALICE_KEY,
        "trip",
        "Is the zanzibar hotel near the port?",
    )
    .await;
    say(addr, ALICE_KEY, "work", "Remind me about zanzibar invoices").await;
    say(
        addr,
        BOB_KEY,
        "trip",
        "My zanzibar secret is <b>bold</b> & true",
    )
    .await;

    let alice = all_hits(addr, ALICE_KEY, "q=zanzibar", 1).await;
    assert_eq!(alice.len(), 3, "{alice:?}");
    assert_eq!(
        sessions_of(&alice),
        HashSet::from(["trip".into(), "work".into()])
    );
    assert!(alice.iter().all(|h| h["role"] == "user"));
    let ids: HashSet<&str> = alice
        .iter()
        .map(|h| h["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "each hit once across pages");
    for h in &alice {
        let snippet = h["snippet"].as_str().unwrap();
        assert!(snippet.contains("<mark>zanzibar</mark>"), "{snippet}");
        assert!(!snippet.contains("secret"), "{snippet}");
        for field in ["created_at", "seq", "score"] {
            assert!(!h[field].is_null(), "{field} in {h}");
        }
    }
    let bob = all_hits(addr, BOB_KEY, "q=zanzibar", 10).await;
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert_eq!(
        bob[0]["snippet"],
        "My <mark>zanzibar</mark> secret is &lt;b&gt;bold&lt;/b&gt; &amp; true"
    );
    // The same session name is still only the caller's own.
    let in_trip = all_hits(addr, BOB_KEY, "q=zanzibar+ferry&session=trip", 10).await;
    assert_eq!(in_trip.len(), 1, "{in_trip:?}");
    assert!(in_trip[0]["snippet"].as_str().unwrap().contains("secret"));
    // A cursor from alice's search gives bob nothing of alice's.
    let first = search(addr, ALICE_KEY, "q=zanzibar&limit=1").await.json();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more pages")
        .to_string();
    let reply = search(addr, BOB_KEY, &format!("q=zanzibar&cursor={cursor}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for h in reply.json()["hits"].as_array().unwrap() {
        assert!(h["snippet"].as_str().unwrap().contains("secret"), "{h}");
    }

    // Bad queries are 400s, a missing key 401.
    let long = "x".repeat(1001);
    for bad in [
        "".to_string(),
        "q=".to_string(),
        "q=%20%20".to_string(),
        format!("q={long}"),
        "q=a&limit=0".to_string(),
        "q=a&limit=101".to_string(),
        "q=a&limit=x".to_string(),
        "q=a&cursor=nonsense".to_string(),
        "q=a&session=no%20spaces".to_string(),
    ] {
        let reply = search(addr, ALICE_KEY, &bad).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.json()["error"]["code"], "invalid_input", "{bad}");
    }
    let reply = raw(addr, "GET", "/v1/search?q=zanzibar", None, "").await;
    assert_eq!(reply.status, 401, "{}", reply.body);

    // Deleting a conversation, then the whole account, removes the hits at once.
    let reply = raw(addr, "DELETE", "/v1/sessions/trip", Some(ALICE_KEY), "").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let alice = all_hits(addr, ALICE_KEY, "q=zanzibar", 10).await;
    assert_eq!(sessions_of(&alice), HashSet::from(["work".into()]));
    let reply = raw(addr, "DELETE", "/v1/me", Some(ALICE_KEY), "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(all_hits(addr, ALICE_KEY, "q=zanzibar", 10).await.is_empty());
    assert_eq!(all_hits(addr, BOB_KEY, "q=zanzibar", 10).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_each_find_only_their_own_messages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    two_users_on(&format!("sqlite://{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_each_find_only_their_own_messages_on_postgres() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    two_users_on(&server.create_database("search_api")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_search_answers_501() {
    let dir = tempfile::tempdir().unwrap();
    let addr = server("memory://", dir.path()).await;
    say(addr, ALICE_KEY, "trip", "zanzibar").await;
    let reply = search(addr, ALICE_KEY, "q=zanzibar").await;
    assert_eq!(reply.status, 501, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["error"]["code"], "search_unavailable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("sqlite://") && message.contains("--archive"),
        "{message}"
    );
}
