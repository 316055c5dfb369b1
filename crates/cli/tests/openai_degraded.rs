//! A resent conversation while Redis is down, on a server that never saw it: the turn is
//! journaled without re-storing the resent history, so when Redis is back and the journal
//! drains, the stored conversation holds every turn once.

mod openai_support;
mod serve_support;

use std::time::Duration;

use serde_json::{json, Value};
use serve_support::*;

/// One resending turn against `base`; appends the answer to `messages`.
async fn turn(base: &str, messages: &mut Vec<Value>, question: &str) -> String {
    messages.push(json!({"role": "user", "content": question}));
    let reply = call(
        reqwest::Method::POST,
        &format!("{base}/v1/chat/completions"),
        None,
        Some(json!({"model": "ragchat", "messages": messages})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let completion = reply.json();
    let answer = completion["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    messages.push(json!({"role": "assistant", "content": answer}));
    completion["session_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_history_is_not_stored_again_while_redis_is_down() {
    let Some(mut redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let store = redis.url();
    let a = Server::start(&["--store", &store]);
    let b = Server::start(&["--store", &store]);
    let mut chat = Vec::new();
    let session = turn(&a.url(), &mut chat, "What is supervised learning?").await;
    assert_eq!(
        turn(&a.url(), &mut chat, "How does it learn?").await,
        session
    );

    redis.stop();
    let degraded = eventually("b to notice", Duration::from_secs(20), || async {
        let body = get(&format!("{}/readyz", b.url()), None).await.json();
        (body["mode"] == "degraded").then_some(())
    });
    // b has never read this conversation: it cannot compare, so it keeps only the new turn.
    let third = async {
        degraded.await;
        turn(&b.url(), &mut chat, "What about unsupervised learning?").await
    };
    assert_eq!(third.await, session);
    let ready = get(&format!("{}/readyz", b.url()), None).await.json();
    assert_eq!(
        ready["pending_sync"], 2,
        "only the question and the answer: {ready}"
    );

    redis.start_again();
    eventually("b's journal to drain", Duration::from_secs(30), || async {
        let body = get(&format!("{}/readyz", b.url()), None).await.json();
        (body["mode"] == "normal" && body["pending_sync"] == 0).then_some(())
    })
    .await;
    let stored = openai_support::stored(&a.url(), None).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let sent = openai_support::pairs(&Value::Array(chat));
    assert_eq!(stored[&session], sent, "every turn once");
}
