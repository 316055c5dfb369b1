//! `ragchat --store postgres://...` through the real binary, against a private PostgreSQL
//! started by the harness: two processes in a row share the conversation, which the
//! TTL does not end (the store is durable), and the password is never printed.

mod cli_support;

use std::process::Output;

use cli_support::json;
use ragchat_testkit::postgres_or_skip;
use serde_json::Value;

fn ragchat(data_dir: &std::path::Path, store: &str, args: &[&str]) -> Output {
    cli_support::ragchat(data_dir, Some(store), args)
}

#[test]
fn sessions_add_and_show_on_postgres() {
    let Some(server) = postgres_or_skip() else {
        return;
    };
    server.create_database("cli");
    let store = format!(
        "postgres://postgres:s3cretpw@127.0.0.1:{}/cli?sslmode=disable",
        server.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let added = json(ragchat(
        d,
        &store,
        &["sessions", "add", "--user", "pat", "--json", "What is ML?"],
    ));
    assert_eq!(added["role"], "user");
    let added = json(ragchat(
        d,
        &store,
        &[
            "--ttl",
            "1",
            "sessions",
            "add",
            "--user",
            "pat",
            "--role",
            "assistant",
            "--json",
            "Machine learning is ...",
        ],
    ));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let shown = json(ragchat(
        d,
        &store,
        &["--ttl", "1", "sessions", "show", "--user", "pat", "--json"],
    ));
    let messages = shown["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{shown}");
    assert_eq!(messages[0]["content"], "What is ML?");
    assert_eq!(messages[1]["id"], added["id"]);

    let stats = ragchat(d, &store, &["sessions", "stats", "--user", "pat", "--json"]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&stats.stdout),
        String::from_utf8_lossy(&stats.stderr)
    );
    assert!(!printed.contains("s3cretpw"), "{printed}");
    let stats = json(stats);
    assert_eq!(stats["message_count"], 2, "{stats}");
    assert_eq!(stats["ttl_remaining_secs"], Value::Null, "{stats}");
    let list = json(ragchat(
        d,
        &store,
        &["sessions", "list", "--user", "pat", "--json"],
    ));
    assert!(list.to_string().contains("What is ML?"), "titled: {list}");
}
