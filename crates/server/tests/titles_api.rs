//! Conversation titles through the router over a real SQLite file: stored with the
//! session, renamed with `PATCH /v1/sessions/{session}`, cleared back to the first
//! question; sessions stored before titles existed are titled by reading them.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{json, Value};

/// Alice and Bob over a SQLite file in a temp dir; the dir must outlive the router.
async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let state = state(engine(manager(&url).await), keys_auth(dir.path()));
    (ragchat_server::app(state), dir)
}

async fn ask(app: &axum::Router, session: &str, question: &str) {
    let reply = post_message(app, session, Some(ALICE_KEY), question).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// `PATCH /v1/sessions/{session}` with `body` as Alice (or `key`).
async fn patch(app: &axum::Router, session: &str, key: Option<&str>, body: &str) -> Reply {
    let uri = format!("/v1/sessions/{session}");
    send(
        app,
        request(Method::PATCH, &uri, key, Some(body.to_string())),
    )
    .await
}

/// Alice's session list as `(session, title)`.
async fn titles(app: &axum::Router) -> Vec<(String, Value)> {
    let reply = get(app, "/v1/sessions", Some(ALICE_KEY)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let listed = reply.json()["sessions"].as_array().unwrap().clone();
    listed
        .iter()
        .map(|s| {
            (
                s["session"].as_str().unwrap().to_string(),
                s["title"].clone(),
            )
        })
        .collect()
}

fn title_of(listed: &[(String, Value)], session: &str) -> Value {
    listed.iter().find(|(s, _)| s == session).unwrap().1.clone()
}

#[tokio::test]
async fn a_renamed_conversation_keeps_its_title_until_cleared() {
    let (app, _dir) = app().await;
    ask(&app, "ml", "What is machine learning?").await;
    ask(&app, "ml", "How does it learn?").await;
    assert_eq!(
        title_of(&titles(&app).await, "ml"),
        "What is machine learning?"
    );

    let reply = patch(&app, "ml", Some(ALICE_KEY), r#"{"title": "  ML basics  "}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let summary = reply.json();
    assert_eq!(summary["session"], "ml");
    assert_eq!(summary["title"], "ML basics");
    assert_eq!(summary["message_count"], 4);
    assert_eq!(title_of(&titles(&app).await, "ml"), "ML basics");
    let stats = get(&app, "/v1/sessions/ml/stats", Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(stats["title"], "ML basics");
    // Later turns keep the given title.
    ask(&app, "ml", "And deep learning?").await;
    assert_eq!(title_of(&titles(&app).await, "ml"), "ML basics");

    let reply = patch(&app, "ml", Some(ALICE_KEY), r#"{"title": null}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["title"], "What is machine learning?");
    assert_eq!(
        title_of(&titles(&app).await, "ml"),
        "What is machine learning?"
    );
}

#[tokio::test]
async fn bad_titles_are_refused_and_change_nothing() {
    let (app, _dir) = app().await;
    ask(&app, "ml", "What is machine learning?").await;
    let long = json!({ "title": "x".repeat(201) }).to_string();
    for body in [
        r#"{"title": ""}"#,
        r#"{"title": "   "}"#,
        r#"{"title": "two\nlines"}"#,
        long.as_str(),
        r#"{}"#,
    ] {
        patch(&app, "ml", Some(ALICE_KEY), body)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    for body in [r#"{"title": 5}"#, r#"{"title": "#] {
        patch(&app, "ml", Some(ALICE_KEY), body)
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_json");
    }
    patch(&app, "bad%20name!", Some(ALICE_KEY), r#"{"title": "x"}"#)
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert_eq!(
        title_of(&titles(&app).await, "ml"),
        "What is machine learning?"
    );
}

#[tokio::test]
async fn only_the_owner_renames_an_existing_conversation() {
    let (app, _dir) = app().await;
    ask(&app, "ml", "What is machine learning?").await;
    patch(&app, "nosuch", Some(ALICE_KEY), r#"{"title": "x"}"#)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    patch(&app, "ml", Some(BOB_KEY), r#"{"title": "Bob's now"}"#)
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    patch(&app, "ml", None, r#"{"title": "x"}"#)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        title_of(&titles(&app).await, "ml"),
        "What is machine learning?"
    );
    let bobs = get(&app, "/v1/sessions", Some(BOB_KEY)).await.json();
    assert_eq!(bobs["sessions"], json!([]));
}

#[tokio::test]
async fn a_session_from_before_titles_is_renamed_and_cleared_back_to_its_first_question() {
    let (app, dir) = app().await;
    ask(&app, "old", "What is overfitting?").await;
    ask(&app, "old", "How to avoid it?").await;
    // As the schema upgrade leaves a session stored before titles existed.
    let conn = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    conn.execute("UPDATE sessions SET auto_title = NULL", [])
        .unwrap();
    assert_eq!(title_of(&titles(&app).await, "old"), "What is overfitting?");
    let reply = patch(&app, "old", Some(ALICE_KEY), r#"{"title": "Overfitting"}"#).await;
    assert_eq!(reply.json()["title"], "Overfitting", "{}", reply.text());
    assert_eq!(title_of(&titles(&app).await, "old"), "Overfitting");
    let reply = patch(&app, "old", Some(ALICE_KEY), r#"{"title": null}"#).await;
    assert_eq!(
        reply.json()["title"],
        "What is overfitting?",
        "{}",
        reply.text()
    );
    assert_eq!(title_of(&titles(&app).await, "old"), "What is overfitting?");
}

#[tokio::test]
async fn the_openapi_document_describes_the_rename() {
    let (app, _dir) = app().await;
    let doc = get(&app, "/openapi.json", None).await.json();
    let rename = &doc["paths"]["/v1/sessions/{session}"]["patch"];
    for status in ["200", "400", "401", "404"] {
        assert!(
            rename["responses"][status].is_object(),
            "{status}: {rename}"
        );
    }
    assert_eq!(rename["security"][0]["bearer"], json!([]));
    let body = &rename["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/SessionPatch");
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["SessionPatch"]["properties"]["title"].is_object());
    assert!(schemas["SessionSummary"]["properties"]["title"].is_object());
    assert!(schemas["SessionStats"]["properties"]["title"].is_object());
}
