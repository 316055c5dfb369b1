//! `ragchat chat` through the real binary with piped stdin, and `ragchat demo`:
//! conversations across processes on SQLite, on a harness Redis and in RAM.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use ragchat_testkit::redis_or_skip;
use serde_json::Value;

const NO_CONVERSATION: &str = "I don't have any earlier conversation";

fn chat(data_dir: &Path, store: Option<&str>, args: &[&str], input: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env("RAGCHAT_DATA_DIR", data_dir);
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    let mut child = cmd
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
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
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

fn first_source(answer: &Value) -> &str {
    answer["sources"][0]["path"].as_str().unwrap_or("(none)")
}

/// Process 1 asks two questions; process 2 resumes. Returns process 2's lines.
fn two_processes(data_dir: &Path, store: Option<&str>) -> (Vec<Value>, Vec<Value>) {
    let args = ["--json", "--user", "dana"];
    let first = json_lines(&chat(
        data_dir,
        store,
        &args,
        "What is machine learning?\nHow does it learn?\n",
    ));
    let second = json_lines(&chat(data_dir, store, &args, "Continue our conversation\n"));
    (first, second)
}

fn assert_resumed(first: &[Value], second: &[Value]) {
    assert_eq!(first[0]["type"], "session");
    assert_eq!(first[0]["resumed"], false);
    assert_eq!(first.len(), 3);
    let session = &second[0];
    assert_eq!(session["resumed"], true, "{session}");
    assert_eq!(session["message_count"], 4);
    let welcome = session["welcome"].as_str().unwrap();
    assert!(
        welcome.starts_with("Welcome back!") && welcome.contains("machine learning"),
        "{welcome}"
    );
    let answer = second[1]["answer"].as_str().unwrap();
    assert!(
        !answer.starts_with(NO_CONVERSATION),
        "the restored history was not used: {answer}"
    );
    assert!(answer.to_lowercase().contains("learn"), "{answer}");
    assert!(
        !second[1]["sources"].as_array().unwrap().is_empty(),
        "{}",
        second[1]
    );
}

#[test]
fn a_second_process_resumes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_processes(dir.path(), None);
    assert_resumed(&first, &second);
}

#[test]
fn a_second_process_resumes_on_redis() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_processes(dir.path(), Some(&server.url()));
    assert_resumed(&first, &second);
}

#[test]
fn memory_store_forgets_between_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, second) = two_processes(dir.path(), Some("memory://"));
    assert_eq!(second[0]["resumed"], false);
    assert_eq!(second[0]["message_count"], 0);
    assert!(second[0]["welcome"].is_null());
    let answer = second[1]["answer"].as_str().unwrap();
    assert!(answer.starts_with(NO_CONVERSATION), "{answer}");
}

#[test]
fn the_seed_scenario_cites_the_matching_articles() {
    let dir = tempfile::tempdir().unwrap();
    let out = chat(
        dir.path(),
        None,
        &["--json", "--user", "seed"],
        "What is machine learning?\nHow does it learn?\nWhat about neural networks?\n",
    );
    let lines = json_lines(&out);
    let cited: Vec<&str> = lines[1..].iter().map(first_source).collect();
    assert_eq!(
        cited,
        [
            "what-is-machine-learning.md",
            "how-models-learn.md",
            "neural-networks.md"
        ]
    );
    for line in &lines[1..] {
        assert_eq!(line["type"], "answer");
        let answer = line["answer"].as_str().unwrap();
        assert!(
            answer.contains("[1]"),
            "answers cite their sources: {answer}"
        );
        assert!(line["message_id"].as_str().unwrap().len() == 36);
    }
}

#[test]
fn plain_pipe_mode_prints_answers_and_sources_without_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let out = chat(
        dir.path(),
        None,
        &["--user", "plain"],
        "What is overfitting?\n",
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[1] overfitting-and-regularization.md"),
        "{text}"
    );
    assert!(
        !text.contains("you>") && !text.contains('\u{1b}'),
        "no prompts or colours: {text:?}"
    );
}

#[test]
fn bad_input_is_reported_and_the_conversation_continues() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(70_000);
    let input = format!("\n   \n{big}\n/frobnicate\nWhat is a decision tree?\n");
    let lines = json_lines(&chat(
        dir.path(),
        None,
        &["--json", "--user", "eve"],
        &input,
    ));
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["session", "error", "command", "answer"],
        "{lines:?}"
    );
    assert!(
        lines[1]["message"].as_str().unwrap().contains("limit"),
        "{}",
        lines[1]
    );
    let listing = lines[2]["output"].as_str().unwrap();
    assert!(
        listing.contains("unknown command /frobnicate") && listing.contains("/history"),
        "{listing}"
    );
    assert_eq!(first_source(&lines[3]), "decision-trees.md");
    // Only the good message was stored.
    let stats = Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env("RAGCHAT_DATA_DIR", dir.path())
        .env_remove("RAGCHAT_STORE")
        .args(["sessions", "stats", "--user", "eve", "--json"])
        .output()
        .unwrap();
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["message_count"], 2);
}

#[test]
fn docs_folder_answers_cite_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(docs.path().join("ops")).unwrap();
    std::fs::write(
        docs.path().join("ops/backups.md"),
        "# Backups\n\nThe nightly backup of the billing database runs at 02:00 and is kept for 35 days.\n",
    )
    .unwrap();
    let lines = json_lines(&chat(
        dir.path(),
        None,
        &[
            "--json",
            "--user",
            "ops",
            "--docs",
            docs.path().to_str().unwrap(),
        ],
        "When does the nightly backup run?\n",
    ));
    assert_eq!(first_source(&lines[1]), "ops/backups.md");
    assert!(lines[1]["answer"].as_str().unwrap().contains("02:00"));
}

#[test]
fn demo_shows_the_loss_and_the_recovery() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |store: &str| {
        Command::new(env!("CARGO_BIN_EXE_ragchat"))
            .env("RAGCHAT_DATA_DIR", dir.path())
            .env_remove("RAGCHAT_STORE")
            .args(["demo", "--store", store])
            .output()
            .unwrap()
    };
    let out = run(&server.url());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 of 4") && text.contains("4 of 4"), "{text}");
    assert!(text.contains("Welcome back!"), "{text}");
    assert!(
        text.contains(NO_CONVERSATION),
        "BEFORE must show the loss: {text}"
    );
    // Away longer than the TTL, the conversation left Redis and came back.
    let away = text
        .lines()
        .find(|l| l.contains("continues after"))
        .unwrap_or_else(|| panic!("no away row: {text}"));
    assert!(away.contains("yes (archived while away)"), "{text}");
    // The demo cleaned up after itself: Redis, and the archive file it made.
    assert_eq!(server.cli(&["DBSIZE"]), "0");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("demo-archive"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let out = run("memory://");
    assert!(
        !out.status.success(),
        "a store that cannot keep context must fail the demo"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("did not keep the conversation"), "{text}");
}
