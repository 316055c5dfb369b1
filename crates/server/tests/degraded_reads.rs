//! While the store is unreachable, a read never says "does not exist" (issue 11,
//! defect 2): a session this server knows nothing about answers 503 with
//! `Retry-After`; one it kept in its journal answers with what it kept, flagged
//! `"partial": true`.

mod common;

use std::time::Duration;

use axum::http::{header, StatusCode};
use common::*;
use ragchat_memory::{open_store, JournalConfig, ManagerConfig, SessionManager, StoreOptions};

/// A server whose Redis does not answer (nothing listens on its port).
async fn server_without_redis(dir: &std::path::Path) -> axum::Router {
    let url = format!("redis://127.0.0.1:{}", ragchat_testkit::free_port());
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(250),
        command_timeout: Duration::from_millis(250),
        lazy: true,
        ..StoreOptions::default()
    };
    let store = open_store(&url, &opts)
        .await
        .expect("open the store lazily");
    let memory = SessionManager::with_journal(
        store,
        ManagerConfig {
            journal: Some(JournalConfig {
                path: dir.join("journal.db"),
                max_bytes: 1 << 20,
            }),
            ..ManagerConfig::default()
        },
    )
    .expect("manager");
    ragchat_server::app(state(engine(memory), keys_auth(dir)))
}

#[tokio::test]
async fn an_unknown_session_is_unavailable_not_missing_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let app = server_without_redis(dir.path()).await;
    for uri in [
        "/v1/sessions/kept-elsewhere/messages",
        "/v1/sessions/kept-elsewhere/messages?limit=1",
        "/v1/sessions/kept-elsewhere/stats",
    ] {
        let reply = get(&app, uri, Some(ALICE_KEY)).await;
        reply.expect_error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        assert!(
            reply.headers.get(header::RETRY_AFTER).is_some(),
            "{uri}: no Retry-After"
        );
    }
}

#[tokio::test]
async fn a_journaled_session_is_served_as_partial_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let app = server_without_redis(dir.path()).await;
    let reply = post_message(&app, "here", Some(ALICE_KEY), "What is overfitting?").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let page = get(&app, "/v1/sessions/here/messages", Some(ALICE_KEY))
        .await
        .json();
    assert_eq!(page["messages"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(
        page["partial"], true,
        "the page must say it is what this server kept: {page}"
    );
}
