//! `ragchat chat` through the real binary: an unreachable `--llm-url` is answered offline
//! with one line saying so (`"fallback": true` with `--json`), and small talk is answered but
//! not welcomed back as a question by the next process.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn chat(data_dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ragchat chat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("ragchat exits")
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "chat failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// An LLM URL on a port nothing listens on.
fn unreachable_llm() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}/v1")
}

#[test]
fn an_unreachable_llm_is_answered_offline_and_says_so() {
    let data = tempfile::tempdir().expect("temp dir");
    let url = unreachable_llm();
    let lines = json_lines(&chat(
        data.path(),
        &["--json", "--user", "erin", "--llm-url", &url],
        "What is overfitting?\n",
    ));
    let answer = &lines[1];
    assert_eq!(answer["type"], "answer", "{answer}");
    assert_eq!(answer["fallback"], true, "{answer}");
    let reason = answer["fallback_reason"].as_str().expect("a reason");
    assert!(reason.contains("unreachable"), "{reason}");
    assert!(
        answer["answer"]
            .as_str()
            .expect("an answer")
            .starts_with("Overfitting happens when"),
        "{answer}"
    );

    let plain = chat(
        data.path(),
        &["--user", "erin", "--session", "plain", "--llm-url", &url],
        "What is overfitting?\n",
    );
    assert!(plain.status.success());
    let stdout = String::from_utf8_lossy(&plain.stdout);
    let notes: Vec<&str> = stdout.lines().filter(|l| l.starts_with("note: ")).collect();
    assert_eq!(notes.len(), 1, "one line says so: {stdout}");
    assert!(notes[0].contains("offline"), "{stdout}");
    assert!(stdout.contains("Overfitting happens when"), "{stdout}");
}

#[test]
fn small_talk_is_not_welcomed_back_as_a_question() {
    let data = tempfile::tempdir().expect("temp dir");
    let first = json_lines(&chat(
        data.path(),
        &["--json", "--user", "finn"],
        "Hello!\nWhat is overfitting?\nThanks!\n",
    ));
    let replies: Vec<&str> = first[1..]
        .iter()
        .map(|l| l["answer"].as_str().expect("an answer"))
        .collect();
    assert!(replies[0].starts_with("Hello!"), "{replies:?}");
    assert!(replies[2].starts_with("You're welcome"), "{replies:?}");
    assert_eq!(first[3]["fallback"], false);

    let second = json_lines(&chat(data.path(), &["--json", "--user", "finn"], ""));
    assert_eq!(second[0]["message_count"], 6, "{}", second[0]);
    assert_eq!(
        second[0]["welcome"],
        "Welcome back! Last time you asked \"What is overfitting?\"."
    );
}
