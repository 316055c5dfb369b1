//! `--retention` and the TTL through the real binary: on the embedded SQLite default
//! the TTL deletes nothing and retention is what deletes; bad values are refused;
//! `serve` keeps deleting in the background (seen over a socket, and in
//! `/metrics`); Redis alone warns that its TTL deletes idle conversations.

mod serve_support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use ragchat_testkit::redis_or_skip;
use serde_json::Value;
use serve_support::{eventually, get, post_message, Server};

fn ragchat(data_dir: &Path, args: &[&str]) -> Output {
    serve_support::ragchat(data_dir)
        .args(args)
        .output()
        .expect("run ragchat")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "ragchat failed: {}", text(&out));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json(out: Output) -> Value {
    let stdout = ok(out);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The acceptance line: embedded default, `--ttl 2`, wait 3 s, the conversation is
/// still there; `--retention 2s` deletes it.
#[test]
fn on_the_embedded_default_the_ttl_keeps_and_retention_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(ragchat(
        d,
        &["--ttl", "2", "sessions", "add", "--user", "tt", "Hello?"],
    ));
    std::thread::sleep(Duration::from_secs(3));

    let shown = json(ragchat(
        d,
        &["--ttl", "2", "sessions", "show", "--user", "tt", "--json"],
    ));
    assert_eq!(shown["messages"][0]["content"], "Hello?", "{shown}");
    let stats = json(ragchat(
        d,
        &["--ttl", "2", "sessions", "stats", "--user", "tt", "--json"],
    ));
    assert_eq!(stats["ttl_remaining_secs"], Value::Null, "{stats}");
    let list = json(ragchat(
        d,
        &["--ttl", "2", "sessions", "list", "--user", "tt", "--json"],
    ));
    assert_eq!(
        list["sessions"][0]["ttl_remaining_secs"],
        Value::Null,
        "{list}"
    );

    // Retention 0 is "keep forever": nothing goes.
    let kept = json(ragchat(
        d,
        &[
            "--retention",
            "0",
            "sessions",
            "show",
            "--user",
            "tt",
            "--json",
        ],
    ));
    assert_eq!(kept["messages"].as_array().unwrap().len(), 1);

    let gone = ragchat(
        d,
        &["--retention", "2s", "sessions", "show", "--user", "tt"],
    );
    assert_eq!(gone.status.code(), Some(3), "{}", text(&gone));
    // Not hidden: gone from the file, for every later command too.
    let after = ragchat(d, &["sessions", "show", "--user", "tt"]);
    assert_eq!(after.status.code(), Some(3), "{}", text(&after));
}

#[test]
fn retention_keeps_what_was_active_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(ragchat(d, &["sessions", "add", "--user", "vic", "Recent"]));
    let shown = json(ragchat(
        d,
        &[
            "--retention",
            "90d",
            "sessions",
            "show",
            "--user",
            "vic",
            "--json",
        ],
    ));
    assert_eq!(shown["messages"][0]["content"], "Recent", "{shown}");
    let env = serve_support::ragchat(d)
        .env("RAGCHAT_RETENTION", "12h")
        .args(["sessions", "show", "--user", "vic", "--json"])
        .output()
        .unwrap();
    assert!(env.status.success(), "{}", text(&env));
}

#[test]
fn bad_retention_values_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(ragchat(d, &["sessions", "add", "--user", "wes", "Keep me"]));
    for bad in ["10w", "-1", "1.5h", "soon", "1h30m", ""] {
        let flag = format!("--retention={bad}");
        let out = ragchat(d, &[&flag, "sessions", "show", "--user", "wes"]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--retention") && stderr.contains("90d, 12h, 30m, 30s"),
            "{bad}: {stderr}"
        );
    }
    let from_env = serve_support::ragchat(d)
        .env("RAGCHAT_RETENTION", "forever")
        .args(["sessions", "show", "--user", "wes"])
        .output()
        .unwrap();
    assert_eq!(from_env.status.code(), Some(2), "{}", text(&from_env));
    let shown = json(ragchat(d, &["sessions", "show", "--user", "wes", "--json"]));
    assert_eq!(shown["messages"][0]["content"], "Keep me", "{shown}");
}

/// Retention through `serve`: a conversation made over HTTP, left idle past
/// `--retention 2s`, disappears from `GET /v1/sessions` while the server runs, and
/// `/metrics` counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_deletes_idle_conversations_in_the_background() {
    let server = Server::start(&["--retention", "2s"]);
    let base = server.url();
    let reply = post_message(&base, "lunch", None, "What is machine learning?").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let names = |body: &Value| -> Vec<String> {
        body["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| s["session"].as_str().unwrap().to_string())
            .collect()
    };

    eventually(
        "retention to delete the idle session",
        Duration::from_secs(60),
        || {
            let url = format!("{base}/v1/sessions");
            async move {
                let body = get(&url, None).await.json();
                names(&body).is_empty().then_some(())
            }
        },
    )
    .await;
    let gone = get(&format!("{base}/v1/sessions/lunch/stats"), None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);

    let metrics = get(&format!("{base}/metrics"), None).await.text;
    let deleted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ragchat_retention_deleted_total "))
        .unwrap_or_else(|| panic!("no retention counter:\n{metrics}"))
        .trim()
        .parse()
        .unwrap();
    assert!(deleted >= 1.0, "{metrics}");
}

/// Redis alone: its TTL deletes idle conversations, so people are told, at start-up
/// and in `/readyz`; `--retention` has no effect there, which is a warning, not an
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_alone_warns_that_its_ttl_deletes_idle_conversations() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let url = redis.url();
    let server = Server::start(&["--store", &url, "--ttl", "120"]);
    let ready = get(&format!("{}/readyz", server.url()), None).await.json();
    let warnings = ready["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| {
            let w = w.as_str().unwrap_or_default();
            w.contains("deleted after the TTL (120 s)") && w.contains("--archive")
        }),
        "{ready}"
    );
    assert!(
        server.log().contains("deleted after the TTL (120 s)"),
        "{}",
        server.log()
    );

    let dir = tempfile::tempdir().unwrap();
    let out = ragchat(
        dir.path(),
        &[
            "--store",
            &url,
            "--retention",
            "30d",
            "sessions",
            "list",
            "--user",
            "xan",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--retention has no effect"), "{stderr}");

    // TTL 0: nothing expires, nothing to warn about.
    let quiet = Server::start(&["--store", &url, "--ttl", "0"]);
    let ready = get(&format!("{}/readyz", quiet.url()), None).await.json();
    let text = ready["warnings"].to_string();
    assert!(!text.contains("deleted after the TTL"), "{ready}");
}

/// The CLI's chat says it too, before the first answer.
#[test]
fn redis_alone_chat_warns_at_start() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_support::ragchat(dir.path())
        .args(["--store", &redis.url(), "chat", "--user", "yul"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"What is ML?\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("deleted after the TTL (3600 s)"),
        "{stderr}"
    );
}
