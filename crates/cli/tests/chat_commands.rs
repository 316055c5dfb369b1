//! `ragchat chat` from a pipe, through the real binary on a real SQLite file: the plain
//! transcript, and the slash commands that must refuse rather than do the wrong thing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn ragchat(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env_remove("RAGCHAT_DOCS")
        .env("RAGCHAT_DATA_DIR", data_dir);
    cmd
}

fn chat(data_dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = ragchat(data_dir)
        .arg("chat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ragchat chat");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    child.wait_with_output().expect("wait")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "chat failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `type` of each line, and the text of the error and command lines.
fn kinds(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["type"].as_str().unwrap()).collect()
}

#[test]
fn plain_mode_echoes_each_question_before_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let text = stdout(&chat(
        dir.path(),
        &["--user", "reader"],
        "What is overfitting?\nWhat is a decision tree?\nWhat is machine learning?\n",
    ));
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{text}"))
    };
    let q1 = at("> What is overfitting?\n");
    let s1 = at("[1] overfitting-and-regularization.md");
    let q2 = at("\n\n> What is a decision tree?\n");
    let s2 = at("[1] decision-trees.md");
    assert!(
        q1 < s1 && s1 < q2 && q2 < s2,
        "question, answer, question, answer:\n{text}"
    );
    assert!(text.starts_with("> What is overfitting?\n"), "{text}");
    // Sources show their lines as the page does: "(line 3)", or "(lines 3-5)" for more.
    for source in text.lines().filter(|l| l.starts_with("  [")) {
        let range = source.rsplit_once(" (").map_or("", |(_, r)| r);
        let one = range
            .strip_prefix("line ")
            .and_then(|r| r.strip_suffix(')'));
        let many = range
            .strip_prefix("lines ")
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| r.split_once('-'));
        let valid = one.is_some_and(|n| n.parse::<u32>().is_ok())
            || many.is_some_and(
                |(a, b)| matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a < b),
            );
        assert!(valid, "{source}");
    }
    assert!(
        text.contains(" (line "),
        "the one-line opening of what-is-machine-learning.md is cited as such:\n{text}"
    );

    // --json stays one object per line, with no echo.
    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "reader2"],
        "What is overfitting?\n",
    ));
    assert_eq!(kinds(&lines), ["session", "answer"]);
}

#[test]
fn switch_to_a_conversation_that_does_not_exist_offers_new() {
    let dir = tempfile::tempdir().unwrap();
    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "sam"],
        "What is machine learning?\n/switch nosuch\n/history\n/sessions\n",
    ));
    assert_eq!(
        kinds(&lines),
        ["session", "answer", "error", "command", "command"]
    );
    let error = lines[2]["message"].as_str().unwrap();
    assert!(
        error.contains("no conversation nosuch") && error.contains("/new nosuch"),
        "{error}"
    );
    // Still in the first conversation, and no empty "nosuch" was created.
    assert!(lines[3]["output"]
        .as_str()
        .unwrap()
        .contains("What is machine learning?"));
    let sessions = lines[4]["output"].as_str().unwrap();
    assert!(sessions.starts_with("* default"), "{sessions}");
    assert!(!sessions.contains("nosuch"), "{sessions}");
}

#[test]
fn new_refuses_an_invalid_or_taken_name_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "nina"],
        "What is machine learning?\n/new bad name!\n/new taken\nWhat is a neural network?\n\
         /switch default\n/new taken\n/sessions\n",
    ));
    assert_eq!(
        kinds(&lines),
        ["session", "answer", "error", "command", "answer", "command", "error", "command"],
        "{lines:?}"
    );
    let invalid = lines[2]["message"].as_str().unwrap();
    assert!(
        invalid.contains("\"bad name!\" is not a valid conversation name")
            && invalid.contains("letters, digits, '.', '_' and '-'"),
        "{invalid}"
    );
    let taken = lines[6]["message"].as_str().unwrap();
    assert!(
        taken.contains("taken already exists") && taken.contains("/switch taken"),
        "{taken}"
    );
    let sessions = lines[7]["output"].as_str().unwrap();
    assert!(
        !sessions.contains("bad"),
        "nothing named after a part of the name: {sessions}"
    );
    assert!(
        sessions.contains("* default") && sessions.contains("  taken"),
        "{sessions}"
    );
}

#[test]
fn sessions_marks_the_current_conversation_when_it_is_new_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "mark"],
        "What is machine learning?\n/new fresh\n/sessions\n",
    ));
    let sessions = lines[3]["output"].as_str().unwrap();
    let rows: Vec<&str> = sessions.lines().collect();
    assert_eq!(rows.len(), 2, "{sessions}");
    assert!(
        rows[0].starts_with("* fresh") && rows[0].contains("0 messages"),
        "{sessions}"
    );
    assert!(
        rows[1].starts_with("  default") && rows[1].contains("2 messages"),
        "{sessions}"
    );
}

#[test]
fn reset_from_a_pipe_needs_reset_bang_or_yes() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    std::fs::create_dir_all(&history).unwrap();
    // Lines typed in an earlier terminal chat, by this user and by another.
    std::fs::write(history.join("rita.txt"), "#V2\nWhat is machine learning?\n").unwrap();
    std::fs::write(history.join("other.txt"), "#V2\nsomething else\n").unwrap();

    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "rita"],
        "What is machine learning?\n/reset\n/stats\n",
    ));
    assert_eq!(kinds(&lines), ["session", "answer", "error", "command"]);
    let refused = lines[2]["message"].as_str().unwrap();
    assert!(
        refused.contains("/reset!") && refused.contains("--yes"),
        "{refused}"
    );
    assert!(lines[3]["output"].as_str().unwrap().contains("2 messages"));
    assert!(
        history.join("rita.txt").exists(),
        "a refused /reset changes nothing"
    );

    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--user", "rita"],
        "/reset!\n/stats\n",
    ));
    assert_eq!(lines[1]["output"], "history deleted; starting afresh");
    assert!(lines[2]["output"]
        .as_str()
        .unwrap()
        .contains("no messages yet"));
    assert!(
        !history.join("rita.txt").exists(),
        "/reset clears the typed-line history"
    );
    assert!(
        history.join("other.txt").exists(),
        "another user's history is untouched"
    );

    let lines = json_lines(&chat(
        dir.path(),
        &["--json", "--yes", "--user", "rita"],
        "What is overfitting?\n/reset\n/stats\n",
    ));
    assert_eq!(lines[2]["output"], "history deleted; starting afresh");
    assert!(lines[3]["output"]
        .as_str()
        .unwrap()
        .contains("no messages yet"));
}

#[test]
fn a_missing_docs_folder_does_not_exist_and_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-docs");
    let out = chat(
        dir.path(),
        &["--docs", missing.to_str().unwrap()],
        "hello\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("is not a folder"), "{stderr}");

    let out = ragchat(dir.path())
        .args(["ingest", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));

    let file = dir.path().join("notes.md");
    std::fs::write(&file, "# Notes\n").unwrap();
    let out = ragchat(dir.path())
        .args(["ingest", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a folder"));
}
