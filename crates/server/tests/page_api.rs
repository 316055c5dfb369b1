//! The routes behind the chat page, through the router over a real SQLite file: the
//! passage a citation points at (owner only), conversation titles in the session list,
//! and what the documents are (`/v1/about`).

mod common;

use axum::http::StatusCode;
use common::*;
use ragchat_memory::{Message, SessionKey, SourceRef};
use serde_json::Value;

/// Alice and Bob over a SQLite file in a temp dir; the dir must outlive the router.
async fn app() -> (
    axum::Router,
    ragchat_memory::SessionManager,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let memory = manager(&url).await;
    let state = state(engine(memory.clone()), keys_auth(dir.path()));
    (ragchat_server::app(state), memory, dir)
}

/// Asks `question` in `session` as Alice; returns the stored answer.
async fn ask(app: &axum::Router, session: &str, question: &str) -> Value {
    let reply = post_message(app, session, Some(ALICE_KEY), question).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["answer"].clone()
}

/// The answer's sentences without their `[n]` markers.
fn sentences(answer: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut in_marker = false;
    for c in answer.chars() {
        match c {
            '[' => in_marker = true,
            ']' if in_marker => in_marker = false,
            _ if !in_marker => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(['.', '?', '!'])
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() > 20)
        .collect()
}

#[tokio::test]
async fn a_cited_passage_is_what_the_answer_quotes() {
    let (app, _memory, _dir) = app().await;
    let answer = ask(&app, "ml", "What is machine learning?").await;
    let id = answer["id"].as_str().unwrap();
    let sources = answer["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{answer}");
    let mut texts = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let uri = format!("/v1/sessions/ml/messages/{id}/sources/{}", i + 1);
        let reply = get(&app, &uri, Some(ALICE_KEY)).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        let passage = reply.json();
        assert_eq!(passage["n"], i + 1);
        assert_eq!(passage["path"], source["path"], "{passage}");
        assert_eq!(passage["heading"], source["heading"], "{passage}");
        assert_eq!(passage["line_start"], source["line_start"], "{passage}");
        assert_eq!(passage["line_end"], source["line_end"], "{passage}");
        assert!(!passage["title"].as_str().unwrap().is_empty(), "{passage}");
        texts.push(passage["text"].as_str().unwrap().to_string());
    }
    // The offline answerer quotes its sources: some quoted sentence is in a passage.
    let quoted = sentences(answer["content"].as_str().unwrap());
    assert!(
        quoted.iter().any(|s| texts.iter().any(|t| t.contains(s))),
        "no sentence of {quoted:?} is in the cited passages {texts:?}"
    );
}

#[tokio::test]
async fn only_the_owner_opens_a_source_and_mistakes_are_clear() {
    let (app, memory, _dir) = app().await;
    let answer = ask(&app, "ml", "What is overfitting?").await;
    let id = answer["id"].as_str().unwrap();
    let count = answer["sources"].as_array().unwrap().len();
    let uri = |session: &str, id: &str, n: &str| {
        format!("/v1/sessions/{session}/messages/{id}/sources/{n}")
    };

    get(&app, &uri("ml", id, "1"), None)
        .await
        .expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    // Bob's view of Alice's source is the same as of a session that never existed.
    let bobs = get(&app, &uri("ml", id, "1"), Some(BOB_KEY)).await;
    let never = get(&app, &uri("nosuch", id, "1"), Some(ALICE_KEY)).await;
    bobs.expect_error(StatusCode::NOT_FOUND, "not_found");
    never.expect_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(bobs.text(), never.text().replace("nosuch", "ml"));

    let other_id = Message::user("x").id.to_string();
    get(&app, &uri("ml", &other_id, "1"), Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    let past = (count + 1).to_string();
    let message = get(&app, &uri("ml", id, &past), Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains(&format!("no [{past}]")), "{message}");
    for (bad_id, n) in [("not-a-uuid", "1"), (id, "0"), (id, "one"), (id, "-1")] {
        get(&app, &uri("ml", bad_id, n), Some(ALICE_KEY))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    }
    get(&app, &uri("bad%20name%21", id, "1"), Some(ALICE_KEY))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "invalid_input");

    // A citation of something the documents no longer hold: 404 that says so.
    let key = SessionKey::new("alice", "ml").unwrap();
    let stale = Message::assistant("Old answer [1].").with_sources(vec![SourceRef {
        path: "removed-since.md".into(),
        heading: Some("Gone".into()),
        score: 1.0,
        line_start: Some(3),
        line_end: Some(5),
        conversation: None,
    }]);
    memory.append(&key, vec![stale.clone()]).await.unwrap();
    let message = get(
        &app,
        &uri("ml", &stale.id.to_string(), "1"),
        Some(ALICE_KEY),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND, "not_found");
    assert!(message.contains("no longer"), "{message}");
}

/// The caller's session list as `(session, title)`.
async fn titles(app: &axum::Router) -> Vec<(String, Value)> {
    let reply = get(app, "/v1/sessions", Some(ALICE_KEY)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply.json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["session"].as_str().unwrap().to_string(),
                s["title"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn conversations_are_titled_by_their_first_question() {
    let (app, memory, _dir) = app().await;
    ask(&app, "first", "What is machine learning?").await;
    ask(&app, "first", "How does it learn?").await;
    ask(&app, "second", "What   is\noverfitting?").await;
    let notes = SessionKey::new("alice", "notes").unwrap();
    memory
        .append(&notes, vec![Message::assistant("A note with no question.")])
        .await
        .unwrap();
    let listed = titles(&app).await;
    let title = |name: &str| listed.iter().find(|(s, _)| s == name).unwrap().1.clone();
    assert_eq!(title("first"), "What is machine learning?");
    assert_eq!(title("second"), "What is overfitting?");
    assert_eq!(title("notes"), Value::Null);
    // Untitled is remembered until the conversation changes: no read per list request.
    let reads = || async {
        let r = memory.status().await.unwrap().reads;
        r.from_cache + r.from_store + r.degraded
    };
    let before = reads().await;
    titles(&app).await;
    assert_eq!(reads().await, before, "nothing read again");
    memory
        .append(&notes, vec![Message::user("Is a question now?")])
        .await
        .unwrap();
    let listed = titles(&app).await;
    let notes_title = listed.iter().find(|(s, _)| s == "notes").unwrap();
    assert_eq!(notes_title.1, "Is a question now?");

    // Deleted and started again under the same name: the new first question.
    let reply = send(
        &app,
        request(
            axum::http::Method::DELETE,
            "/v1/sessions/first",
            Some(ALICE_KEY),
            None,
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    ask(&app, "first", "What is a neural network?").await;
    let listed = titles(&app).await;
    let first = listed.iter().find(|(s, _)| s == "first").unwrap();
    assert_eq!(first.1, "What is a neural network?");

    // Bob sees none of it.
    let bobs = get(&app, "/v1/sessions", Some(BOB_KEY)).await.json();
    assert_eq!(bobs["sessions"], serde_json::json!([]));
}

#[tokio::test]
async fn one_list_request_reads_a_bounded_number_of_conversations() {
    let (app, memory, dir) = app().await;
    let total = ragchat_server::titles::TITLE_READS_PER_LIST + 5;
    for i in 0..total {
        let key = SessionKey::new("alice", format!("s{i:02}")).unwrap();
        memory
            .append(&key, vec![Message::user(format!("Question number {i}?"))])
            .await
            .unwrap();
    }
    // Sessions stored before titles existed: the list reads their first questions.
    rusqlite::Connection::open(dir.path().join("sessions.db"))
        .unwrap()
        .execute("UPDATE sessions SET auto_title = NULL", [])
        .unwrap();
    let reads = || async {
        let r = memory.status().await.unwrap().reads;
        r.from_cache + r.from_store + r.degraded
    };
    let before = reads().await;
    let first = titles(&app).await;
    assert_eq!(first.len(), total);
    assert_eq!(
        reads().await - before,
        ragchat_server::titles::TITLE_READS_PER_LIST as u64,
        "one read per titled conversation, no more"
    );
    let titled = |listed: &[(String, Value)]| listed.iter().filter(|(_, t)| !t.is_null()).count();
    assert_eq!(
        titled(&first),
        ragchat_server::titles::TITLE_READS_PER_LIST,
        "{first:?}"
    );
    // The most recent ones first; the next request titles the rest.
    assert!(first[0].1.is_string(), "{first:?}");
    let before = reads().await;
    let second = titles(&app).await;
    assert_eq!(titled(&second), total, "{second:?}");
    assert_eq!(reads().await - before, 5, "only the five still untitled");
    // Titles are kept: listing again reads nothing.
    let before = reads().await;
    titles(&app).await;
    assert_eq!(reads().await - before, 0);
    for (session, title) in &second {
        let i: usize = session[1..].parse().unwrap();
        assert_eq!(title, &Value::from(format!("Question number {i}?")));
    }
}

#[tokio::test]
async fn about_names_the_documents_to_callers_with_a_key() {
    let (app, _memory, _dir) = app().await;
    let reply = get(&app, "/v1/about", None).await;
    reply.expect_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(!reply.text().contains("extractive"), "{}", reply.text());

    let about = get(&app, "/v1/about", Some(ALICE_KEY)).await.json();
    let index = index();
    assert_eq!(about["chunk_count"], index.num_chunks());
    let documents = index.documents().unwrap();
    assert_eq!(about["document_count"], documents.len());
    assert_eq!(about["documents_truncated"], false);
    let listed = about["documents"].as_array().unwrap();
    assert_eq!(listed.len(), documents.len());
    assert!(
        listed
            .iter()
            .any(|d| d["path"] == "what-is-machine-learning.md"
                && d["title"] == "What Is Machine Learning?"),
        "{about}"
    );
    let examples = about["example_questions"].as_array().unwrap();
    assert_eq!(examples.len(), 3, "{about}");
    assert_eq!(about["answerer"], "extractive");
    // Each example is answered from the documents, with sources.
    for (i, example) in examples.iter().enumerate() {
        let answer = ask(&app, &format!("ex{i}"), example.as_str().unwrap()).await;
        assert!(
            !answer["sources"].as_array().unwrap().is_empty(),
            "{example} has no sources: {answer}"
        );
    }
}

#[tokio::test]
async fn about_never_names_the_llm_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let llm = ragchat_rag::OpenAiAnswerer::new(ragchat_rag::OpenAiConfig::new(
        "http://llm-host.internal.example:11434/v1",
        "llama3.2",
    ))
    .unwrap();
    let state = state(
        engine_with(manager(&url).await, std::sync::Arc::new(llm)),
        keys_auth(dir.path()),
    );
    let app = ragchat_server::app(state);
    let reply = get(&app, "/v1/about", Some(ALICE_KEY)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["answerer"], "openai:llama3.2");
    assert!(!reply.text().contains("llm-host"), "{}", reply.text());
    let anonymous = get(&app, "/v1/about", None).await;
    assert!(!anonymous.text().contains("llama"), "{}", anonymous.text());
}

#[tokio::test]
async fn the_openapi_document_describes_the_page_routes() {
    let (app, _memory, _dir) = app().await;
    let doc = get(&app, "/openapi.json", None).await.json();
    let source = &doc["paths"]["/v1/sessions/{session}/messages/{message_id}/sources/{n}"]["get"];
    assert!(source["responses"]["200"].is_object(), "{source}");
    assert!(source["responses"]["404"].is_object(), "{source}");
    assert_eq!(source["security"][0]["bearer"], serde_json::json!([]));
    let fields: Vec<&str> = doc["components"]["schemas"]["CitedPassage"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in [
        "n",
        "path",
        "title",
        "heading",
        "line_start",
        "line_end",
        "text",
    ] {
        assert!(fields.contains(&field), "{field} missing from {fields:?}");
    }
    let about = &doc["paths"]["/v1/about"]["get"];
    assert_eq!(
        about["security"][0]["bearer"],
        serde_json::json!([]),
        "{about}"
    );
    assert!(doc["components"]["schemas"]["About"]["properties"]["example_questions"].is_object());
}
