//! Quotas and paging from the shell (issue 11): a message over a quota is refused with
//! exit code 2 and writes nothing; `sessions list` pages through however many sessions
//! a user has; `sessions show` and `export` read page by page.

use std::path::Path;
use std::process::{Command, Output};

use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::{ManagerConfig, Message, SessionKey, SessionManager};
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

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "ragchat failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn a_message_over_a_quota_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |session: &str, extra: &[&str]| {
        let mut args = vec![
            "--max-sessions-per-user",
            "1",
            "sessions",
            "add",
            "-u",
            "kim",
            "-s",
            session,
        ];
        args.extend_from_slice(extra);
        args.push("hello");
        ragchat(d, &args)
    };
    assert!(add("one", &[]).status.success());
    assert!(
        add("one", &[]).status.success(),
        "more messages in the same session are fine"
    );
    let out = add("two", &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quota") && err.contains("1 sessions per user"),
        "{err}"
    );
    let list = json(&ragchat(d, &["sessions", "list", "-u", "kim", "--json"]));
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");

    // The byte quota of one session, from the environment.
    let big = "x".repeat(60 * 1024);
    let mut refused = None;
    for i in 0..40 {
        let out = Command::new(env!("CARGO_BIN_EXE_ragchat"))
            .env_remove("RAGCHAT_STORE")
            .env("RAGCHAT_DATA_DIR", d)
            .env("RAGCHAT_MAX_SESSION_MB", "1")
            .args(["sessions", "add", "-u", "lea", &big])
            .output()
            .unwrap();
        if !out.status.success() {
            refused = Some((i, out));
            break;
        }
    }
    let (i, out) = refused.expect("1 MiB of 60 KiB messages was never refused");
    assert_eq!(
        i, 17,
        "17 messages of 60 KiB fit in 1 MiB, the 18th does not"
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("per session"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_export_page_through_everything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    {
        let store = SqliteStore::open(d.join("sessions.db")).await.unwrap();
        let memory = SessionManager::new(std::sync::Arc::new(store), ManagerConfig::default());
        for i in 0..230 {
            let key = SessionKey::new("max", format!("s{i:03}")).unwrap();
            memory
                .append(&key, vec![Message::user(format!("session {i}"))])
                .await
                .unwrap();
        }
        let long = SessionKey::new("max", "long").unwrap();
        let lines: Vec<Message> = (0..1200)
            .map(|i| Message::user(format!("line {i:04}")))
            .collect();
        memory.append(&long, lines).await.unwrap();
    }
    let list = tokio::task::spawn_blocking(move || {
        json(&ragchat(&d, &["sessions", "list", "-u", "max", "--json"]))
    });
    let list = list.await.unwrap();
    let names: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 231, "every session, across pages");
    assert_eq!(names[0], "long", "newest first");
    let unique: std::collections::HashSet<&&str> = names.iter().collect();
    assert_eq!(unique.len(), 231, "each once");

    let d = dir.path().to_path_buf();
    let shown = tokio::task::spawn_blocking(move || {
        json(&ragchat(
            &d,
            &["sessions", "show", "-u", "max", "-s", "long", "--json"],
        ))
    })
    .await
    .unwrap();
    let lines: Vec<&str> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 1200);
    assert_eq!(lines[1199], "line 1199");
    assert_eq!(shown["partial"], false);

    let d = dir.path().to_path_buf();
    let file = dir.path().join("export.json");
    let f = file.clone();
    let out = tokio::task::spawn_blocking(move || {
        ragchat(
            &d,
            &[
                "sessions",
                "export",
                "-u",
                "max",
                "--output",
                f.to_str().unwrap(),
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let sessions = export["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 231);
    let total: usize = sessions
        .iter()
        .map(|s| s["messages"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 230 + 1200);
}
