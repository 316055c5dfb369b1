//! A journal entry belongs to the store it was written for (issue 11, defect 3): it is
//! replayed only into that store, kept while another store is in use, and reported by
//! `sessions sync` (also on the SQLite default). And while a store is unreachable, a
//! conversation this machine knows nothing about is "unavailable" (exit 4), never
//! "not found" (defect 2).

use std::path::Path;
use std::process::{Command, Output};

use ragchat_testkit::RedisServer;
use serde_json::Value;

fn ragchat(data_dir: &Path, store: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_REDIS_URL")
        .env("RAGCHAT_DATA_DIR", data_dir);
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    // Generous: nothing listens on the "down" store's port (refused at once), and the
    // live one must not look down on a loaded machine.
    cmd.args(["--store-timeout-ms", "5000"])
        .args(args)
        .output()
        .expect("run ragchat")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "ragchat failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn journaled_messages_never_reach_another_store() {
    let Some(other) = RedisServer::builder().start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let down = format!("redis://127.0.0.1:{}/0", ragchat_testkit::free_port());

    let added = json(&ragchat(
        d,
        Some(&down),
        &[
            "sessions",
            "add",
            "-u",
            "erin",
            "--json",
            "meant for the first store",
        ],
    ));
    assert_eq!(added["journaled"], true, "{added}");

    // The same data dir with another Redis (another environment or tenant): the
    // conversation does not exist there (exit 3), the journaled message was not replayed.
    let shown = ragchat(
        d,
        Some(&other.url()),
        &["sessions", "show", "-u", "erin", "--json"],
    );
    assert_eq!(
        shown.status.code(),
        Some(3),
        "a message journaled for {down} was written to another Redis: {}",
        String::from_utf8_lossy(&shown.stdout)
    );
    let report = json(&ragchat(
        d,
        Some(&other.url()),
        &["sessions", "sync", "--json"],
    ));
    assert_eq!(report["replayed"], 0, "{report}");
    let others = report["other_stores"]
        .as_array()
        .unwrap_or_else(|| panic!("sync does not report other stores: {report}"));
    assert_eq!(others.len(), 1, "{report}");
    assert_eq!(others[0]["entries"], 1, "{report}");
    assert!(
        others[0]["store"]
            .as_str()
            .unwrap()
            .contains(&down["redis://".len()..]),
        "{report}"
    );
    let keys = other.cli(&["KEYS", "ragchat:*erin*"]);
    assert!(keys.trim().is_empty(), "other Redis holds {keys}");

    // The SQLite default reports them as well, instead of "needs no journal".
    let out = ragchat(d, None, &["sessions", "sync"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("needs no journal"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    let report = json(&ragchat(d, None, &["sessions", "sync", "--json"]));
    assert_eq!(report["other_stores"][0]["entries"], 1, "{report}");
}

#[test]
fn an_unknown_session_is_unavailable_while_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let down = format!("redis://127.0.0.1:{}", ragchat_testkit::free_port());
    for args in [
        &["sessions", "show", "-u", "frank", "--json"][..],
        &["sessions", "show", "-u", "frank"][..],
        &["sessions", "stats", "-u", "frank", "--json"][..],
    ] {
        let out = ragchat(dir.path(), Some(&down), args);
        assert_eq!(
            out.status.code(),
            Some(4),
            "{args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
