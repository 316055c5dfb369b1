//! `ragchat sessions search`, run as a real process: on an SQLite file (the default
//! store) and on PostgreSQL (a harness server, skipped with a note where it is not
//! installed), text and `--json` (the API's shape), only the given user's messages;
//! bad queries exit 2; a store that cannot search exits 5 saying what would.

mod cli_support;

use std::path::Path;

use serde_json::Value;

use cli_support::{ok, ragchat};

fn add(d: &Path, store: Option<&str>, user: &str, session: &str, text: &str) {
    ok(ragchat(
        d,
        store,
        &[
            "sessions",
            "add",
            "--user",
            user,
            "--session",
            session,
            text,
        ],
    ));
}

fn searches_on(store: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    add(
        d,
        store,
        "alice",
        "ops",
        "The backup command: restic backup /srv",
    );
    add(
        d,
        store,
        "alice",
        "ops",
        "Restore a backup with restic restore latest",
    );
    add(
        d,
        store,
        "alice",
        "trip",
        "Backup plan if the train is late",
    );
    add(d, store, "bob", "ops", "bob's backup secret");

    let text = ok(ragchat(
        d,
        store,
        &["sessions", "search", "--user", "alice", "restic", "backup"],
    ));
    assert!(text.contains("«restic» «backup»"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(
        text.lines().next().unwrap().starts_with("ops  #1  user"),
        "{text}"
    );

    let out = ok(ragchat(
        d,
        store,
        &[
            "sessions", "search", "--user", "alice", "--json", "--limit", "2", "backup",
        ],
    ));
    let page: Value = serde_json::from_str(out.trim()).expect("JSON");
    let hits = page["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 2, "{page}");
    for field in [
        "session",
        "message_id",
        "seq",
        "role",
        "created_at",
        "snippet",
        "score",
    ] {
        assert!(!hits[0][field].is_null(), "{field}: {page}");
    }
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let out = ok(ragchat(
        d,
        store,
        &[
            "sessions", "search", "--user", "alice", "--json", "--limit", "2", "--cursor", cursor,
            "backup",
        ],
    ));
    let rest: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(rest["hits"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest["next_cursor"].is_null());

    let out = ok(ragchat(
        d,
        store,
        &[
            "sessions",
            "search",
            "--user",
            "alice",
            "--session",
            "trip",
            "--json",
            "backup",
        ],
    ));
    let trip: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(trip["hits"].as_array().unwrap().len(), 1, "{trip}");
    assert_eq!(trip["hits"][0]["session"], "trip");

    for bad in [
        vec!["sessions", "search", "--user", "alice", " "],
        vec!["sessions", "search", "--user", "alice", "--limit", "0", "x"],
        vec![
            "sessions", "search", "--user", "alice", "--cursor", "zz", "x",
        ],
        vec!["sessions", "search", "--user", "no spaces", "x"],
    ] {
        let out = ragchat(d, store, &bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
}

#[test]
fn searches_an_sqlite_store() {
    searches_on(None);
}

#[test]
fn searches_a_postgres_store() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    searches_on(Some(&server.create_database("search_cli")));
}

#[test]
fn a_store_that_cannot_search_exits_5_saying_what_would() {
    let dir = tempfile::tempdir().unwrap();
    let out = ragchat(
        dir.path(),
        Some("memory://"),
        &["sessions", "search", "--user", "alice", "anything"],
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("search needs a durable store"), "{err}");
    assert!(err.contains("--archive"), "{err}");
}
