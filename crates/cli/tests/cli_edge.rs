//! The CLI's edges, as real processes: stored content that carries terminal control
//! sequences is shown, never executed; `sessions add -` refuses an oversized standard
//! input without reading all of it; an unusable data dir is its own error (exit 1,
//! naming the path), not "store unavailable" (exit 4).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const ESC: char = '\u{1b}';

fn ragchat(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    for name in [
        "RAGCHAT_STORE",
        "RAGCHAT_REDIS_URL",
        "RAGCHAT_TTL",
        "RAGCHAT_LLM_URL",
        "RAGCHAT_MAX_MESSAGE_BYTES",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("RAGCHAT_DATA_DIR", data_dir);
    cmd
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    ragchat(data_dir).args(args).output().expect("run ragchat")
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "ragchat failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

#[test]
fn sessions_show_prints_control_sequences_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = format!("red {ESC}[31malert{ESC}[0m\rspoofed\u{9b}2J bell\u{7} end");
    stdout_of(&run(
        dir.path(),
        &["sessions", "add", "--user", "alice", &hostile],
    ));

    let shown = stdout_of(&run(dir.path(), &["sessions", "show", "--user", "alice"]));
    assert!(
        !shown.contains(ESC) && !shown.contains('\r') && !shown.contains('\u{9b}'),
        "raw control characters reached the terminal: {shown:?}"
    );
    assert!(shown.contains("red \\x1b[31malert\\x1b[0m"), "{shown}");
    assert!(shown.contains("\\rspoofed"), "{shown}");
    assert!(shown.contains("\\u{9b}2J bell\\x07 end"), "{shown}");

    // Scripts get the exact text: JSON escapes it and nothing is lost.
    let json = stdout_of(&run(
        dir.path(),
        &["sessions", "show", "--user", "alice", "--json"],
    ));
    let value: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(value["messages"][0]["content"], hostile.as_str());
}

#[test]
fn chat_history_prints_control_sequences_visibly() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = format!("What is {ESC}]0;owned{ESC}\\ML?");
    stdout_of(&run(
        dir.path(),
        &["sessions", "add", "--user", "alice", &hostile],
    ));
    let mut child = ragchat(dir.path())
        .args(["chat", "--user", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ragchat chat");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"/history\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = stdout_of(&out);
    assert!(!shown.contains(ESC), "{shown:?}");
    assert!(shown.contains("What is \\x1b]0;owned\\x1b\\ML?"), "{shown}");
}

#[test]
fn oversized_stdin_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 1000usize;
    let mut child = ragchat(dir.path())
        .args(["--max-message-bytes", &limit.to_string()])
        .args(["sessions", "add", "--user", "alice", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ragchat sessions add -");
    let mut stdin = child.stdin.take().unwrap();
    // Far more than the limit; a reader that reads to the end takes all of it.
    const OFFERED: usize = 64 * 1024 * 1024;
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0;
        while written < OFFERED {
            match stdin.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break, // the reader went away (broken pipe)
            }
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("standard input") && stderr.contains(&format!("{limit} bytes")),
        "{stderr}"
    );
    assert!(
        written < OFFERED / 4,
        "the command read {written} bytes of standard input before refusing it"
    );
    // Nothing was stored: the conversation does not even exist (exit 3).
    let shown = run(
        dir.path(),
        &["sessions", "show", "--user", "alice", "--json"],
    );
    assert_eq!(
        shown.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
}

#[test]
fn stdin_at_the_limit_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ragchat(dir.path())
        .args(["--max-message-bytes", "1000"])
        .args(["sessions", "add", "--user", "alice", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all("é".repeat(500).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let added: serde_json::Value = serde_json::from_str(stdout_of(&out).trim()).unwrap();
    assert_eq!(added["content"].as_str().unwrap().len(), 1000);
}

#[test]
fn an_unusable_data_dir_is_exit_1_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A data dir below a regular file cannot be created, whoever runs the test.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let data_dir = file.join("ragchat");
    for extra in [&[][..], &["--store", "redis://127.0.0.1:1"][..]] {
        let out = ragchat(&data_dir)
            .args(extra)
            .args(["sessions", "add", "--user", "alice", "hello"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("data dir") && stderr.contains(&data_dir.display().to_string()),
            "{extra:?}: {stderr}"
        );
    }
}
