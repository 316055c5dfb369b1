//! `POST /v1/chat/completions` as its clients use it, through the router (`oneshot`) over
//! real stores (a SQLite file, a `redis-server` started for the test): a client resending
//! the whole conversation maps to one stored conversation without doubling anything;
//! edits and answers asked for again branch; `X-Session-Id` names a session that can be
//! continued by sending only the new message.

mod common;
mod openai_common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use axum::Router;
use common::*;
use openai_common::*;
use serde_json::{json, Value};

/// Questions answerable from the bundled corpus, cycled through.
const QUESTIONS: &[&str] = &[
    "What is machine learning?",
    "How does it learn?",
    "What is overfitting and how do I avoid it?",
    "Explain gradient descent.",
    "What about neural networks?",
    "How do transformers use attention?",
    "When should I use a random forest?",
    "What is cross-validation for?",
];

async fn app_over(url: &str) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let state = state(engine(manager(url).await), keys_auth(dir.path()));
    (ragchat_server::app(state), dir)
}

async fn sqlite_app() -> (Router, tempfile::TempDir, tempfile::TempDir) {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("sessions.db").display());
    let (app, keys) = app_over(&url).await;
    (app, keys, db)
}

/// One turn of a client that resends everything: appends the answer to `messages`.
async fn turn(app: &Router, messages: &mut Vec<Value>, question: &str) -> (String, Value) {
    messages.push(msg("user", question));
    let reply = complete(app, Some(ALICE_KEY), &body(messages, json!({})), None).await;
    let answer = answer_of(&reply);
    messages.push(msg("assistant", &answer));
    let session = reply.headers["x-session-id"].to_str().unwrap().to_string();
    (session, reply.json())
}

async fn twenty_turns_store_forty_messages(app: &Router) {
    let mut messages = Vec::new();
    let mut sessions = BTreeSet::new();
    for i in 0..20 {
        let (session, completion) = turn(app, &mut messages, QUESTIONS[i % QUESTIONS.len()]).await;
        assert!(session.starts_with("oai-"), "{session}");
        assert!(
            !completion["sources"].as_array().unwrap().is_empty(),
            "turn {i} cites: {completion}"
        );
        sessions.insert(session);
    }
    assert_eq!(sessions.len(), 1, "one conversation: {sessions:?}");
    let stored = stored(app, ALICE_KEY).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].1.len(), 40, "40 stored messages, not 400");
    assert_eq!(
        stored[0].1,
        pairs(&messages),
        "exactly what the client holds"
    );
}

#[tokio::test]
async fn twenty_resent_turns_are_forty_stored_messages_in_sqlite() {
    let (app, _keys, _db) = sqlite_app().await;
    twenty_turns_store_forty_messages(&app).await;
}

#[tokio::test]
async fn twenty_resent_turns_are_forty_stored_messages_in_redis() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let (app, _keys) = app_over(&redis.url()).await;
    twenty_turns_store_forty_messages(&app).await;
}

#[tokio::test]
async fn the_same_conversation_maps_to_the_same_session_on_another_server() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", db.path().join("sessions.db").display());
    let (first, _k1) = app_over(&url).await;
    let mut messages = vec![msg("system", "Answer from the documents.")];
    let (session, _) = turn(&first, &mut messages, "What is machine learning?").await;
    drop(first);
    // A new server process over the same store: same derivation, same session.
    let (second, _k2) = app_over(&url).await;
    let (again, _) = turn(&second, &mut messages, "Continue").await;
    assert_eq!(session, again);
    assert!(
        messages[4]["content"]
            .as_str()
            .unwrap()
            .contains("What is machine learning?"),
        "\"Continue\" picks up the topic: {}",
        messages[4]
    );
    let stored = stored(&second, ALICE_KEY).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].1,
        pairs(&messages),
        "the system prompt is kept too"
    );
}

#[tokio::test]
async fn edits_branch_and_leave_the_stored_conversation_as_it_was() {
    let (app, _keys, _db) = sqlite_app().await;
    let mut original = Vec::new();
    let (root, _) = turn(&app, &mut original, "What is machine learning?").await;
    turn(&app, &mut original, "How does it learn?").await;

    // The client edits its second question: a branch holding the edited chat.
    let mut edited = original[..2].to_vec();
    let (branch, _) = turn(
        &app,
        &mut edited,
        "What is overfitting and how do I avoid it?",
    )
    .await;
    assert_ne!(branch, root);
    // Its next turn finds the branch again; the original is untouched.
    let (next, _) = turn(&app, &mut edited, "Explain gradient descent.").await;
    assert_eq!(next, branch);
    let mut sessions = stored(&app, ALICE_KEY).await;
    sessions.sort_by_key(|(_, m)| m.len());
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(sessions[0], (root.clone(), pairs(&original)));
    assert_eq!(sessions[1], (branch.clone(), pairs(&edited)));

    // The original chat goes on where it was.
    let (same, _) = turn(&app, &mut original, "What about neural networks?").await;
    assert_eq!(same, root);
    assert_eq!(stored(&app, ALICE_KEY).await.len(), 2);
}

#[tokio::test]
async fn asking_again_returns_the_stored_answer_and_stores_nothing() {
    let (app, _keys, _db) = sqlite_app().await;
    let mut chat = Vec::new();
    let (root, first) = turn(&app, &mut chat, "What is gradient descent?").await;
    turn(&app, &mut chat, "What about neural networks?").await;

    // A retry or "regenerate" of the last answer: the offline answerer gives the same
    // answer, which is already stored.
    let again = complete(&app, Some(ALICE_KEY), &body(&chat[..3], json!({})), None).await;
    assert_eq!(answer_of(&again), chat[3]["content"].as_str().unwrap());
    assert_eq!(again.headers["x-session-id"], root.as_str());
    // A new chat opening with the same question: the same.
    let opening = complete(&app, Some(ALICE_KEY), &body(&chat[..1], json!({})), None).await;
    assert_eq!(
        answer_of(&opening),
        first["choices"][0]["message"]["content"]
    );
    let sessions = stored(&app, ALICE_KEY).await;
    assert_eq!(sessions, vec![(root, pairs(&chat))]);
}

#[tokio::test]
async fn concurrent_identical_requests_store_the_turn_once() {
    let (app, _keys, _db) = sqlite_app().await;
    let chat = [msg("user", "What is a random forest?")];
    let request = body(&chat, json!({}));
    let (a, b) = tokio::join!(
        complete(&app, Some(ALICE_KEY), &request, None),
        complete(&app, Some(ALICE_KEY), &request, None)
    );
    assert_eq!(answer_of(&a), answer_of(&b));
    let sessions = stored(&app, ALICE_KEY).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].1.len(), 2, "{sessions:?}");
}

#[tokio::test]
async fn a_named_session_continues_from_memory_with_only_the_new_message() {
    let (app, _keys, _db) = sqlite_app().await;
    let system = msg("system", "Answer from the documents.");
    let first = complete(
        &app,
        Some(ALICE_KEY),
        &body(
            &[system.clone(), msg("user", "What is machine learning?")],
            json!({}),
        ),
        Some("notes"),
    )
    .await;
    let first_answer = answer_of(&first);
    assert_eq!(first.headers["x-session-id"], "notes");
    // Only the new message: the stored conversation is the context.
    let next = complete(
        &app,
        Some(ALICE_KEY),
        &body(&[system.clone(), msg("user", "Continue")], json!({})),
        Some("notes"),
    )
    .await;
    let continued = answer_of(&next);
    assert!(
        continued.contains("What is machine learning?"),
        "the context came from memory: {continued}"
    );
    // Without the header the same message is a new chat with nothing to continue.
    let fresh = complete(
        &app,
        Some(ALICE_KEY),
        &body(&[msg("user", "Continue")], json!({})),
        None,
    )
    .await;
    assert!(answer_of(&fresh).contains("don't have any earlier conversation"));

    // A client that resends everything under the same name continues it too.
    let full = [
        system.clone(),
        msg("user", "What is machine learning?"),
        msg("assistant", &first_answer),
        msg("user", "Continue"),
        msg("assistant", &continued),
        msg("user", "What about neural networks?"),
    ];
    let third = complete(
        &app,
        Some(ALICE_KEY),
        &body(&full, json!({})),
        Some("notes"),
    )
    .await;
    let third_answer = answer_of(&third);
    let sessions = stored(&app, ALICE_KEY).await;
    let notes = sessions.iter().find(|(s, _)| s == "notes").expect("notes");
    let mut expected = pairs(&full);
    expected.push(("assistant".into(), third_answer));
    assert_eq!(notes.1, expected, "the system prompt once, every turn once");
}

#[tokio::test]
async fn an_invalid_session_name_is_refused_and_changes_nothing() {
    let (app, _keys, _db) = sqlite_app().await;
    let reply = complete(
        &app,
        Some(ALICE_KEY),
        &body(&[msg("user", "What is ML?")], json!({})),
        Some("../etc"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text());
    assert_eq!(reply.json()["error"]["param"], "X-Session-Id");
    assert!(stored(&app, ALICE_KEY).await.is_empty());
}
