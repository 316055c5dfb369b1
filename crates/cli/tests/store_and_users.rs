//! Where conversations live and how they end, through the real binary: `sessions show` of a
//! conversation that does not exist (exit 3) and of one that is empty (exit 0), an explicit
//! SQLite path in a folder that does not exist (refused, exit 2), and `sessions erase`.

use std::path::Path;
use std::process::{Command, Output};

use ragchat_memory::{open_store, ManagerConfig, SessionKey, SessionManager, StoreOptions};
use serde_json::Value;

fn ragchat(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_REDIS_URL")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .args(args)
        .output()
        .expect("run ragchat")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ragchat failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn show_says_not_found_for_a_conversation_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ragchat(d, &["sessions", "show", "--user", "nobody"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no conversation nobody/default"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    let out = ragchat(d, &["sessions", "show", "--user", "nobody", "--json"]);
    assert_eq!(out.status.code(), Some(3));

    // An existing conversation without messages is not an error.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", d.join("sessions.db").display());
        let store = open_store(&url, &StoreOptions::default()).await.unwrap();
        let manager = SessionManager::new(store, ManagerConfig::default());
        manager
            .create_session(&SessionKey::new("nobody", "empty").unwrap())
            .await
            .unwrap();
    });
    let shown: Value = serde_json::from_str(
        ok(&ragchat(
            d,
            &[
                "sessions",
                "show",
                "--user",
                "nobody",
                "--session",
                "empty",
                "--json",
            ],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(
        shown["messages"].as_array().map(Vec::len),
        Some(0),
        "{shown}"
    );
    let text = ok(&ragchat(
        d,
        &["sessions", "show", "--user", "nobody", "--session", "empty"],
    ));
    assert!(text.contains("no messages"), "{text}");
}

#[test]
fn an_explicit_sqlite_path_in_a_missing_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = dir.path().join("nonexistent/dir");
    let url = format!("sqlite://{}/x.db", missing.display());
    let out = ragchat(
        &data,
        &["--store", &url, "sessions", "add", "--user", "a", "hello"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("the folder {} does not exist", missing.display())),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("nonexistent").exists(),
        "nothing was created"
    );

    // The data dir's own folders are created, for the default store and an explicit one.
    ok(&ragchat(
        &data,
        &["sessions", "add", "--user", "a", "hello"],
    ));
    assert!(data.join("sessions.db").exists());
    let inside = format!("sqlite://{}/stores/other.db", data.display());
    ok(&ragchat(
        &data,
        &[
            "--store", &inside, "sessions", "add", "--user", "a", "hello",
        ],
    ));
    assert!(data.join("stores/other.db").exists());
}

#[test]
fn erase_removes_every_conversation_and_the_history_file_of_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (user, session) in [("erin", "default"), ("erin", "work"), ("frank", "default")] {
        ok(&ragchat(
            d,
            &[
                "sessions",
                "add",
                "--user",
                user,
                "--session",
                session,
                "hi",
            ],
        ));
    }
    std::fs::create_dir_all(d.join("history")).unwrap();
    std::fs::write(d.join("history/erin.txt"), "#V2\nmy question\n").unwrap();
    std::fs::write(d.join("history/frank.txt"), "#V2\nhis question\n").unwrap();

    let erased: Value = serde_json::from_str(
        ok(&ragchat(
            d,
            &["sessions", "erase", "--user", "erin", "--json"],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(erased["deleted_sessions"], 2, "{erased}");
    assert_eq!(erased["history_file_removed"], true);
    assert!(!d.join("history/erin.txt").exists());
    let listed: Value = serde_json::from_str(
        ok(&ragchat(
            d,
            &["sessions", "list", "--user", "erin", "--json"],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(
        listed["sessions"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );

    // Another user keeps everything.
    assert!(d.join("history/frank.txt").exists());
    ok(&ragchat(d, &["sessions", "show", "--user", "frank"]));

    // Erasing again finds nothing and is not an error.
    let text = ok(&ragchat(d, &["sessions", "erase", "--user", "erin"]));
    assert!(text.contains("erased erin: 0 conversation(s)"), "{text}");
    let bad = ragchat(d, &["sessions", "erase", "--user", "no body"]);
    assert_eq!(bad.status.code(), Some(2));
}
