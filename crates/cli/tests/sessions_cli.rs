//! The `ragchat sessions` and `ragchat bench memory` commands, run as real processes
//! against real SQLite files and a real redis-server started by the harness.

mod cli_support;

use std::process::Command;

use ragchat_testkit::redis_or_skip;
use serde_json::Value;

use cli_support::{json, ok, ragchat};

/// Two processes in a row: the second sees what the first wrote (or not, for memory://).
fn history_across_processes(store: Option<&str>, durable: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(ragchat(
        d,
        store,
        &["sessions", "add", "--user", "alice", "What is ML?"],
    ));
    let added = json(ragchat(
        d,
        store,
        &[
            "sessions",
            "add",
            "--user",
            "alice",
            "--role",
            "assistant",
            "--json",
            "Machine learning is ...",
        ],
    ));
    assert_eq!(added["role"], "assistant");
    assert_eq!(added["status"], "complete");

    let show = ragchat(d, store, &["sessions", "show", "--user", "alice", "--json"]);
    if !durable {
        // The conversation did not outlive its process: it does not exist (exit 3).
        assert_eq!(
            show.status.code(),
            Some(3),
            "memory:// must not outlive its process: {}",
            String::from_utf8_lossy(&show.stdout)
        );
        return;
    }
    let shown = json(show);
    assert_eq!(shown["user"], "alice");
    assert_eq!(shown["session"], "default");
    let messages = shown["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{shown}");
    assert_eq!(messages[0]["content"], "What is ML?");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[1]["id"], added["id"]);
    for field in ["id", "role", "content", "sources", "created_at", "status"] {
        assert!(messages[0].get(field).is_some(), "missing {field}: {shown}");
    }

    let stats = json(ragchat(
        d,
        store,
        &["sessions", "stats", "--user", "alice", "--json"],
    ));
    assert_eq!(stats["message_count"], 2);
    assert_eq!(
        stats["bytes"],
        ("What is ML?".len() + "Machine learning is ...".len()) as u64
    );
    if store.is_some_and(|s| s.starts_with("redis")) {
        // Redis alone: the TTL is what ends an idle conversation.
        let ttl = stats["ttl_remaining_secs"].as_u64().unwrap();
        assert!((3590..=3600).contains(&ttl), "{stats}");
    } else {
        // The embedded default keeps conversations: the TTL deletes nothing.
        assert_eq!(stats["ttl_remaining_secs"], Value::Null, "{stats}");
    }
    for field in ["user", "session", "created_at", "updated_at", "store"] {
        assert!(stats.get(field).is_some(), "missing {field}: {stats}");
    }

    ok(ragchat(
        d,
        store,
        &[
            "sessions",
            "add",
            "-u",
            "alice",
            "-s",
            "work",
            "second session",
        ],
    ));
    let list = json(ragchat(
        d,
        store,
        &["sessions", "list", "--user", "alice", "--json"],
    ));
    let sessions = list["sessions"].as_array().unwrap();
    let names: Vec<&str> = sessions
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["work", "default"], "newest first: {list}");
    for field in [
        "session",
        "message_count",
        "updated_at",
        "ttl_remaining_secs",
    ] {
        assert!(sessions[0].get(field).is_some(), "missing {field}: {list}");
    }

    let export = json(ragchat(
        d,
        store,
        &["sessions", "export", "--user", "alice"],
    ));
    assert_eq!(export["sessions"].as_array().unwrap().len(), 2, "{export}");

    let people = ok(ragchat(d, store, &["sessions", "list", "--user", "alice"]));
    assert!(
        people.contains("work") && people.contains("default"),
        "{people}"
    );

    let deleted = json(ragchat(
        d,
        store,
        &["sessions", "delete", "--user", "alice", "--json"],
    ));
    assert_eq!(deleted["deleted"], true);
    let out = ragchat(d, store, &["sessions", "stats", "--user", "alice"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stats of a deleted session is 'not found'"
    );
    let list = json(ragchat(
        d,
        store,
        &["sessions", "list", "--user", "alice", "--json"],
    ));
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

#[test]
fn sqlite_default_keeps_history_across_processes() {
    history_across_processes(None, true);
}

#[test]
fn redis_keeps_history_across_processes() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    history_across_processes(Some(&server.url()), true);
}

#[test]
fn memory_store_forgets_when_the_process_exits() {
    history_across_processes(Some("memory://"), false);
}

#[test]
fn redis_flag_uses_redis_url_env() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ragchat"))
            .env("RAGCHAT_DATA_DIR", dir.path())
            .env("RAGCHAT_REDIS_URL", server.url())
            .env_remove("RAGCHAT_STORE")
            .args(args)
            .output()
            .unwrap()
    };
    ok(run(&["--redis", "sessions", "add", "-u", "bob", "hello"]));
    ok(run(&["sessions", "add", "-u", "bob", "again", "--redis"]));
    let stats = json(run(&[
        "sessions",
        "stats",
        "-u",
        "bob",
        "--json",
        "--redis",
        &server.url(),
    ]));
    assert_eq!(stats["message_count"], 2);
    assert!(stats["store"].as_str().unwrap().starts_with("redis://"));
    // Nothing went to the embedded default.
    assert!(!dir.path().join("sessions.db").exists());
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = "x".repeat(65);
    for user in ["../x", "a b", "{x}", "", long.as_str()] {
        let out = ragchat(d, None, &["sessions", "add", "--user", user, "hi"]);
        assert_eq!(out.status.code(), Some(2), "user {user:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("user id"), "{err}");
    }
    let out = ragchat(
        d,
        None,
        &["sessions", "add", "--user", "ok", "--session", "a/b", "hi"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = ragchat(d, None, &["sessions", "add", "--user", "ok", "   "]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    let big = "y".repeat(64 * 1024 + 1);
    let out = ragchat(d, None, &["sessions", "add", "--user", "ok", &big]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit"));
    let out = ragchat(
        d,
        None,
        &[
            "--max-message-bytes",
            "10",
            "sessions",
            "add",
            "--user",
            "ok",
            "eleven char",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = ragchat(d, Some("nosql://x"), &["sessions", "list", "--user", "ok"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown store scheme"));
    let list = json(ragchat(
        d,
        None,
        &["sessions", "list", "--user", "ok", "--json"],
    ));
    assert!(
        list["sessions"].as_array().unwrap().is_empty(),
        "something was written: {list}"
    );
}

#[test]
fn unreachable_redis_fails_fast_with_exit_code_4() {
    let dir = tempfile::tempdir().unwrap();
    let port = ragchat_testkit::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = ragchat(
        dir.path(),
        Some(&url),
        &["--store-timeout-ms", "300", "sessions", "list", "-u", "a"],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unavailable"));
}

#[test]
fn bench_memory_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = json(ragchat(
        dir.path(),
        Some("memory://"),
        &[
            "bench",
            "memory",
            "--history",
            "10",
            "--turns",
            "50",
            "--warmup",
            "5",
            "--json",
        ],
    ));
    for field in [
        "store",
        "history",
        "turns",
        "turns_per_s",
        "p50_ms",
        "p99_ms",
    ] {
        assert!(out.get(field).is_some(), "missing {field}: {out}");
    }
    assert_eq!(out["history"], 10);
    assert_eq!(out["turns"], 50);
    assert!(out["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(out["p99_ms"].as_f64().unwrap() >= out["p50_ms"].as_f64().unwrap());
}

#[test]
fn rename_titles_a_conversation_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |session: &str, text: &str| {
        ok(ragchat(
            d,
            None,
            &[
                "sessions",
                "add",
                "--user",
                "alice",
                "--session",
                session,
                text,
            ],
        ))
    };
    add("ml", "What is\nmachine learning?");
    add("ml", "And deep learning?");
    let title_in_list = || {
        let list = json(ragchat(
            d,
            None,
            &["sessions", "list", "--user", "alice", "--json"],
        ));
        list["sessions"][0]["title"].clone()
    };
    assert_eq!(title_in_list(), "What is machine learning?");

    let renamed = json(ragchat(
        d,
        None,
        &[
            "sessions",
            "rename",
            "--user",
            "alice",
            "ml",
            "  ML notes ",
            "--json",
        ],
    ));
    assert_eq!(renamed["session"], "ml");
    assert_eq!(renamed["title"], "ML notes");
    assert_eq!(renamed["message_count"], 2);
    assert_eq!(title_in_list(), "ML notes");
    let table = ok(ragchat(d, None, &["sessions", "list", "--user", "alice"]));
    assert!(
        table.contains("title") && table.contains("ML notes"),
        "{table}"
    );
    let text = ok(ragchat(
        d,
        None,
        &["sessions", "rename", "-u", "alice", "ml", "Notes"],
    ));
    assert!(text.contains("renamed alice/ml: Notes"), "{text}");

    let cleared = json(ragchat(
        d,
        None,
        &[
            "sessions", "rename", "--user", "alice", "ml", "--clear", "--json",
        ],
    ));
    assert_eq!(cleared["title"], "What is machine learning?");
    assert_eq!(title_in_list(), "What is machine learning?");
}

#[test]
fn rename_refuses_bad_titles_and_missing_conversations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(ragchat(
        d,
        None,
        &[
            "sessions",
            "add",
            "--user",
            "alice",
            "--session",
            "ml",
            "Hi?",
        ],
    ));
    let long = "x".repeat(201);
    for title in ["", "   ", "two\nlines", long.as_str()] {
        let out = ragchat(
            d,
            None,
            &["sessions", "rename", "--user", "alice", "ml", title],
        );
        assert_eq!(out.status.code(), Some(2), "{title:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("title"),
            "{title:?}"
        );
    }
    for args in [
        &["sessions", "rename", "--user", "alice", "ml"][..],
        &[
            "sessions", "rename", "--user", "alice", "ml", "x", "--clear",
        ][..],
        &["sessions", "rename", "--user", "alice", "a/b", "x"][..],
    ] {
        let out = ragchat(d, None, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = ragchat(
        d,
        None,
        &["sessions", "rename", "--user", "alice", "nosuch", "x"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ragchat(d, None, &["sessions", "rename", "--user", "bob", "ml", "x"]);
    assert_eq!(out.status.code(), Some(3));
    let list = json(ragchat(
        d,
        None,
        &["sessions", "list", "--user", "alice", "--json"],
    ));
    assert_eq!(list["sessions"][0]["title"], "Hi?", "unchanged: {list}");
}
