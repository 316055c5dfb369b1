//! Short-lived `ragchat` processes while Redis is down: an acknowledged message waits
//! in the data dir's journal and reaches Redis once a later command of that data dir
//! runs (`sessions sync`, or any other).

use std::path::Path;
use std::process::{Command, Output};

use ragchat_testkit::RedisServer;
use serde_json::Value;

fn ragchat(data_dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env_remove("RAGCHAT_STORE")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .args(["--store", url])
        .args(args)
        .output()
        .expect("run ragchat")
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ragchat failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    let text = stdout_ok(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn contents(show: &Value) -> Vec<String> {
    show["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_message_written_while_redis_was_down_reaches_it_later() {
    let Some(mut server) = RedisServer::builder().appendonly(true).start_or_skip() else {
        return;
    };
    let url = server.url();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    server.stop();

    let out = ragchat(
        first.path(),
        &url,
        &[
            "sessions",
            "add",
            "-u",
            "carol",
            "--json",
            "written while down",
        ],
    );
    let added = json(&out);
    assert_eq!(added["journaled"], true, "{added}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning:") && stderr.contains("journal"),
        "{stderr}"
    );

    // While Redis is down, the first data dir still shows what it kept, flagged partial.
    let shown = json(&ragchat(
        first.path(),
        &url,
        &["sessions", "show", "-u", "carol", "--json"],
    ));
    assert_eq!(contents(&shown), ["written while down"]);
    assert_eq!(shown["partial"], true);

    server.start_again();
    let unseen = ragchat(
        second.path(),
        &url,
        &["sessions", "show", "-u", "carol", "--json"],
    );
    assert_eq!(
        unseen.status.code(),
        Some(3),
        "not replayed yet, so Redis cannot have it: {}",
        String::from_utf8_lossy(&unseen.stdout)
    );

    let report = json(&ragchat(
        first.path(),
        &url,
        &["sessions", "sync", "--json"],
    ));
    assert_eq!(report["replayed"], 1, "{report}");
    assert_eq!(report["remaining"], 0, "{report}");
    let shown = json(&ragchat(
        second.path(),
        &url,
        &["sessions", "show", "-u", "carol", "--json"],
    ));
    assert_eq!(contents(&shown), ["written while down"]);

    // Any later command of the first data dir replays what it kept, not only `sync`.
    server.stop();
    let added = json(&ragchat(
        first.path(),
        &url,
        &["sessions", "add", "-u", "carol", "--json", "second outage"],
    ));
    assert_eq!(added["journaled"], true);
    server.start_again();
    stdout_ok(&ragchat(
        first.path(),
        &url,
        &["sessions", "list", "-u", "nobody"],
    ));
    let shown = json(&ragchat(
        second.path(),
        &url,
        &["sessions", "show", "-u", "carol", "--json"],
    ));
    assert_eq!(contents(&shown), ["written while down", "second outage"]);
    let stats = json(&ragchat(
        second.path(),
        &url,
        &["sessions", "stats", "-u", "carol", "--json"],
    ));
    assert_eq!(stats["message_count"], 2);
    assert_eq!(stats["mode"], "normal");
    assert_eq!(stats["pending_sync"], 0);
    let report = json(&ragchat(
        first.path(),
        &url,
        &["sessions", "sync", "--json"],
    ));
    assert_eq!(report["replayed"], 0, "nothing left to replay: {report}");
}
