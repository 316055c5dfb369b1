//! The HTTP API through the router, without a socket (`oneshot`), over real stores:
//! turns, history, streaming, isolation between users, every error row, and the
//! operator endpoints.

mod common;

use axum::http::{header, Method, StatusCode};
use common::*;
use ragchat_server::auth::Auth;
use ragchat_testkit::assert_prometheus_text;
use serde_json::Value;

async fn alice_and_bob() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = state(engine(manager("memory://").await), keys_auth(dir.path()));
    (ragchat_server::app(state), dir)
}

fn ids(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .expect("an array of messages")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_turn_is_answered_with_sources_and_kept() {
    let (app, _dir) = alice_and_bob().await;
    let reply = post_message(&app, "ml", Some(ALICE_KEY), "What is machine learning?").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let turn = reply.json();
    assert_eq!(turn["session"], "ml");
    assert_eq!(turn["user_message"]["role"], "user");
    assert_eq!(turn["user_message"]["content"], "What is machine learning?");
    assert_eq!(turn["answer"]["role"], "assistant");
    assert_eq!(turn["answer"]["status"], "complete");
    let sources = turn["answer"]["sources"].as_array().unwrap();
    assert!(
        sources
            .iter()
            .any(|s| s["path"] == "what-is-machine-learning.md"),
        "{turn}"
    );

    let follow = post_message(&app, "ml", Some(ALICE_KEY), "How does it learn?").await;
    assert_eq!(follow.status, StatusCode::OK);
    let follow = follow.json();
    assert!(
        follow["answer"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["path"] == "how-models-learn.md"),
        "the follow-up resolves against the first turn: {follow}"
    );

    let page = get(&app, "/v1/sessions/ml/messages", Some(ALICE_KEY))
        .await
        .json();
    let all = ids(&page["messages"]);
    assert_eq!(
        all,
        [
            turn["user_message"]["id"].as_str().unwrap(),
            turn["answer"]["id"].as_str().unwrap(),
            follow["user_message"]["id"].as_str().unwrap(),
            follow["answer"]["id"].as_str().unwrap(),
        ]
    );
    assert_eq!(page["has_more"], false);
    assert_eq!(
        page["messages"][1], turn["answer"],
        "history returns the stored answer as sent"
    );

    let first = get(&app, "/v1/sessions/ml/messages?limit=2", Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(ids(&first["messages"]), all[..2]);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["partial"], false);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_string();
    let after = get(
        &app,
        &format!("/v1/sessions/ml/messages?after={cursor}&limit=1"),
        Some(ALICE_KEY),
    )
    .await
    .json();
    assert_eq!(ids(&after["messages"]), [all[2].clone()]);
    assert_eq!(after["has_more"], true);
    // A message id is not a cursor: a clear 400, not a wrong page.
    get(
        &app,
        &format!("/v1/sessions/ml/messages?after={}", all[1]),
        Some(ALICE_KEY),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_input");

    let stats = get(&app, "/v1/sessions/ml/stats", Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(stats["message_count"], 4);
    assert_eq!(stats["session"], "ml");
    assert_eq!(stats["mode"], "normal");

    let list = get(&app, "/v1/sessions", Some(ALICE_KEY)).await.json();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    assert_eq!(sessions[0]["session"], "ml");
    assert_eq!(sessions[0]["message_count"], 4);
    assert!(sessions[0]["updated_at"].is_string());
    assert!(sessions[0]["ttl_remaining_secs"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn streamed_turns_send_tokens_then_sources_then_done() {
    let (app, _dir) = alice_and_bob().await;
    let mut request = request(
        Method::POST,
        "/v1/sessions/stream/messages",
        Some(ALICE_KEY),
        Some(r#"{"content":"What is gradient descent?"}"#.into()),
    );
    request
        .headers_mut()
        .insert(header::ACCEPT, "text/event-stream".parse().unwrap());
    let reply = send(&app, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = parse_sse(&reply.text());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let done_at = names
        .iter()
        .position(|n| *n == "done")
        .expect("a done event");
    assert_eq!(done_at, names.len() - 1, "done comes last: {names:?}");
    assert_eq!(names[done_at - 1], "sources", "{names:?}");
    assert!(
        names[..done_at - 1].iter().all(|n| *n == "token") && done_at >= 3,
        "several tokens first: {names:?}"
    );
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "token")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    let done = &events[done_at].1;
    assert_eq!(streamed, done["content"].as_str().unwrap());
    assert_eq!(done["status"], "complete");
    assert_eq!(events[done_at - 1].1, done["sources"]);
    assert!(!done["sources"].as_array().unwrap().is_empty());

    let page = get(&app, "/v1/sessions/stream/messages", Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(
        page["messages"][1], *done,
        "the streamed answer is what was stored"
    );
}

#[tokio::test]
async fn another_users_session_is_indistinguishable_from_a_missing_one() {
    let (app, _dir) = alice_and_bob().await;
    let reply = post_message(&app, "secret", Some(ALICE_KEY), "What is overfitting?").await;
    assert_eq!(reply.status, StatusCode::OK);

    // Bob asks about alice's session and about one nobody has: the same answers.
    for (path, method) in [
        ("/v1/sessions/{}/messages", Method::GET),
        ("/v1/sessions/{}/stats", Method::GET),
        ("/v1/sessions/{}", Method::DELETE),
    ] {
        let theirs = send(
            &app,
            request(
                method.clone(),
                &path.replace("{}", "secret"),
                Some(BOB_KEY),
                None,
            ),
        )
        .await;
        let missing = send(
            &app,
            request(
                method.clone(),
                &path.replace("{}", "missing"),
                Some(BOB_KEY),
                None,
            ),
        )
        .await;
        theirs.expect_error(StatusCode::NOT_FOUND, "not_found");
        assert_eq!(theirs.status, missing.status);
        assert_eq!(
            theirs.text().replace("secret", "X"),
            missing.text().replace("missing", "X"),
            "{method} {path}"
        );
        let header_names = |r: &Reply| {
            let mut names: Vec<String> = r.headers.keys().map(|k| k.to_string()).collect();
            names.sort();
            names
        };
        assert_eq!(header_names(&theirs), header_names(&missing));
    }
    let bobs = get(&app, "/v1/sessions", Some(BOB_KEY)).await.json();
    assert_eq!(bobs["sessions"], serde_json::json!([]));
    let export = get(&app, "/v1/export", Some(BOB_KEY)).await.json();
    assert_eq!(export["user"], "bob");
    assert_eq!(export["sessions"], serde_json::json!([]));

    // Writing to "secret" as bob writes bob's own session; alice's is untouched.
    let reply = post_message(&app, "secret", Some(BOB_KEY), "What is a decision tree?").await;
    assert_eq!(reply.status, StatusCode::OK);
    let erased = send(&app, request(Method::DELETE, "/v1/me", Some(BOB_KEY), None))
        .await
        .json();
    assert_eq!(erased["deleted_sessions"], 1);
    let alices = get(&app, "/v1/sessions/secret/messages", Some(ALICE_KEY))
        .await
        .json();
    let contents: Vec<&str> = alices["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents.len(), 2);
    assert_eq!(contents[0], "What is overfitting?");
    let export = get(&app, "/v1/export", Some(ALICE_KEY)).await.json();
    assert_eq!(export["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(export["sessions"][0]["session"], "secret");
    assert_eq!(
        export["sessions"][0]["messages"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn every_error_row_has_its_status_and_stores_nothing() {
    let (app, _dir) = alice_and_bob().await;
    let body = |content: &str| Some(serde_json::json!({ "content": content }).to_string());
    let post =
        |uri: &str, key: Option<&str>, body: Option<String>| request(Method::POST, uri, key, body);
    let uri = "/v1/sessions/s1/messages";

    send(&app, post(uri, None, body("hi")))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let wrong = send(&app, post(uri, Some("not-a-key-0123456789"), body("hi"))).await;
    wrong.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(wrong.headers[header::WWW_AUTHENTICATE], "Bearer");
    get(&app, "/v1/sessions", None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    get(&app, "/v1/export", Some("Bearer-less"))
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");

    let message = send(
        &app,
        post("/v1/sessions/bad:id/messages", Some(ALICE_KEY), body("hi")),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert!(message.contains("session id"), "{message}");
    let long = format!("/v1/sessions/{}/messages", "x".repeat(65));
    send(&app, post(&long, Some(ALICE_KEY), body("hi")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    get(&app, "/v1/sessions/a%7Bb%7D/stats", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");

    send(
        &app,
        post(uri, Some(ALICE_KEY), Some("{\"content\": ".into())),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(
        &app,
        post(uri, Some(ALICE_KEY), Some("{\"text\": \"hi\"}".into())),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(&app, post(uri, Some(ALICE_KEY), Some("[1,2]".into())))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_json");
    let mut no_type = post(uri, Some(ALICE_KEY), body("hi"));
    no_type.headers_mut().remove(header::CONTENT_TYPE);
    send(&app, no_type)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_json");
    send(&app, post(uri, Some(ALICE_KEY), body("  \n")))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");

    let limit = 64 * 1024;
    let message = send(
        &app,
        post(uri, Some(ALICE_KEY), body(&"a".repeat(limit + 1))),
    )
    .await
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert!(message.contains(&limit.to_string()), "{message}");
    // Bodies may be 6x the message limit (JSON escapes) plus 4 KiB: this is over.
    let huge = format!(
        "{{\"content\": \"hi\", \"pad\": \"{}\"}}",
        " ".repeat(7 * limit)
    );
    send(&app, post(uri, Some(ALICE_KEY), Some(huge)))
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let mut streamed = post(uri, Some(ALICE_KEY), body(&"a".repeat(limit + 1)));
    streamed
        .headers_mut()
        .insert(header::ACCEPT, "text/event-stream".parse().unwrap());
    send(&app, streamed)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    get(&app, "/v1/sessions/s1/messages?after=nope", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    get(&app, "/v1/sessions/s1/messages?limit=0", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    get(&app, "/v1/sessions/s1/messages?limit=ten", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    get(&app, "/v1/nothing-here", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    send(
        &app,
        request(Method::PUT, "/v1/sessions", Some(ALICE_KEY), None),
    )
    .await
    .expect_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

    // None of that stored anything.
    let list = get(&app, "/v1/sessions", Some(ALICE_KEY)).await.json();
    assert_eq!(list["sessions"], serde_json::json!([]), "{list}");
    get(&app, "/v1/sessions/s1/messages", Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn store_down_without_a_journal_answers_503_with_retry_after() {
    let Some(mut redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let memory = manager(&redis.url()).await;
    let app = ragchat_server::app(state(engine(memory), Auth::local()));
    let ok = post_message(&app, "s", None, "What is clustering?").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());

    redis.stop();
    for reply in [
        post_message(&app, "s", None, "And k-means?").await,
        get(&app, "/v1/sessions", None).await,
        get(&app, "/v1/sessions/s/messages", None).await,
        get(&app, "/v1/export", None).await,
    ] {
        reply.expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert_eq!(reply.headers[header::RETRY_AFTER], "5");
        assert!(
            !reply.text().contains("127.0.0.1"),
            "no store address leaks: {}",
            reply.text()
        );
    }
    let ready = get(&app, "/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["ready"], false);

    redis.start_again();
    // The client reconnects on its own; the first calls may still fail.
    let page = loop {
        let reply = get(&app, "/v1/sessions/s/messages", None).await;
        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
            break reply.json();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        page["messages"].as_array().unwrap().len(),
        2,
        "the failed turn stored nothing: {page}"
    );
}

#[tokio::test]
async fn without_keys_every_request_is_the_local_user() {
    let state = state(engine(manager("memory://").await), Auth::local());
    let app = ragchat_server::app(state);
    let reply = post_message(&app, "default", None, "What is a neural network?").await;
    assert_eq!(reply.status, StatusCode::OK);
    let export = get(&app, "/v1/export", None).await.json();
    assert_eq!(export["user"], "local");
    // A key is ignored, not rejected.
    let list = get(&app, "/v1/sessions", Some("whatever-0123456789"))
        .await
        .json();
    assert_eq!(list["sessions"][0]["session"], "default");
    let deleted = send(
        &app,
        request(Method::DELETE, "/v1/sessions/default", None, None),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    get(&app, "/v1/sessions/default/messages", None)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn operator_endpoints() {
    let (app, _dir) = alice_and_bob().await;
    let health = get(&app, "/healthz", None).await;
    assert_eq!(
        (health.status, health.json()["status"].clone()),
        (StatusCode::OK, "ok".into())
    );

    // Without a key, only what a load balancer needs.
    let public = get(&app, "/readyz", None).await.json();
    assert_eq!(public["ready"], true);
    assert!(public.get("store").is_none(), "{public}");
    let ready = get(&app, "/readyz", Some(ALICE_KEY)).await;
    assert_eq!(ready.status, StatusCode::OK);
    let ready = ready.json();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["mode"], "normal");
    assert_eq!(ready["pending_sync"], 0);
    assert_eq!(ready["redis_persistence"], "n/a");
    assert_eq!(ready["store"], "memory://");

    let turn = post_message(&app, "m", Some(ALICE_KEY), "What is a transformer?").await;
    assert_eq!(turn.status, StatusCode::OK);
    let metrics = get(&app, "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text();
    assert_prometheus_text(&text);
    for expected in [
        "ragchat_turn_seconds_count{outcome=\"ok\"} 1",
        "ragchat_store_call_seconds_count{op=\"append\"} 1",
        "ragchat_turn_phase_seconds_count{phase=\"retrieval\"} 1",
        "ragchat_degraded 0",
        "ragchat_journal_pending_messages 0",
        "ragchat_active_sessions 1",
        // memory:// cannot vouch for a cached copy: the turn's read asked the store.
        "ragchat_memory_reads_total{source=\"store\"} 1",
        "ragchat_memory_reads_total{source=\"cache\"} 0",
        "ragchat_http_requests_total{route=\"/v1/sessions/{session}/messages\",status=\"200\"} 1",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }

    let doc = get(&app, "/openapi.json", None).await.json();
    assert_eq!(doc["info"]["title"], "ragchat");
    assert!(doc["paths"]["/v1/sessions/{session}/messages"]["post"].is_object());

    let page = get(&app, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().contains("/app.js"));
    let script = get(&app, "/app.js", None).await;
    assert!(script.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.text().contains("text/event-stream"));
}
