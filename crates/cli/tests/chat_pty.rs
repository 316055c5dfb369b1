//! The terminal chat through a real pseudo-terminal: what only happens when a person is
//! typing. `/reset` asks first (`--yes` does not), typed lines are kept per user in a
//! private file that `/reset` clears, and `--no-history-file` keeps none.
//!
//! `TERM=dumb` makes the line editor read plain lines (no cursor queries that only a
//! terminal emulator would answer); standard input and output are still a terminal, so
//! the REPL runs as it does for a person.

use std::path::Path;
use std::process::Command;

use rexpect::session::PtySession;

/// Generous: the first chat in a data dir indexes the bundled corpus, on a busy machine.
const TIMEOUT_MS: u64 = 180_000;

fn spawn(data_dir: &Path, args: &[&str]) -> PtySession {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_LLM_URL")
        .env_remove("RAGCHAT_DOCS")
        .env_remove("RAGCHAT_NO_HISTORY_FILE")
        .env("TERM", "dumb")
        .env("RAGCHAT_DATA_DIR", data_dir)
        .arg("chat")
        .args(args);
    let mut session =
        rexpect::session::spawn_command(cmd, Some(TIMEOUT_MS)).expect("spawn in a pty");
    expect(&mut session, "you> ");
    session
}

fn expect(session: &mut PtySession, needle: &str) -> String {
    session
        .exp_string(needle)
        .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"))
}

/// Sends a line and waits for the next prompt; returns what was printed before it.
fn say(session: &mut PtySession, line: &str) -> String {
    session.send_line(line).expect("send");
    expect(session, "you> ")
}

fn quit(mut session: PtySession) {
    session.send_line("/quit").expect("send");
    expect(&mut session, "bye");
    session.exp_eof().expect("the chat exits");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

#[test]
fn reset_asks_first_and_clears_the_typed_lines_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut chat = spawn(dir.path(), &["--user", "tess"]);
    let answer = say(&mut chat, "What is machine learning?");
    assert!(
        answer.contains("[1] what-is-machine-learning.md"),
        "{answer}"
    );

    chat.send_line("/reset").expect("send");
    expect(
        &mut chat,
        "delete conversation default (2 messages) and your typed-line history? [y/N] ",
    );
    let kept = say(&mut chat, "n");
    assert!(kept.contains("kept default"), "{kept}");
    let history = say(&mut chat, "/history");
    assert!(
        history.contains("What is machine learning?"),
        "declining kept it: {history}"
    );

    chat.send_line("/reset").expect("send");
    expect(&mut chat, "[y/N] ");
    let reset = say(&mut chat, "y");
    assert!(
        reset.contains("history deleted; starting afresh"),
        "{reset}"
    );
    let history = say(&mut chat, "/history");
    assert!(history.contains("(no messages yet)"), "{history}");
    quit(chat);

    // The typed lines from before the reset are gone; what was typed after it is kept.
    let file = dir.path().join("history/tess.txt");
    let kept = std::fs::read_to_string(&file).expect("history file");
    assert!(!kept.contains("What is machine learning?"), "{kept}");
    assert!(kept.contains("/history"), "{kept}");
}

#[test]
fn yes_skips_the_question() {
    let dir = tempfile::tempdir().unwrap();
    let mut chat = spawn(dir.path(), &["--user", "yan", "--yes"]);
    say(&mut chat, "What is overfitting?");
    let reset = say(&mut chat, "/reset");
    assert!(
        reset.contains("history deleted; starting afresh"),
        "{reset}"
    );
    assert!(!reset.contains("[y/N]"), "{reset}");
    quit(chat);
}

#[test]
fn typed_lines_are_kept_per_user_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    // What an earlier version left: every user's lines in one shared file.
    std::fs::write(
        dir.path().join("chat_history.txt"),
        "#V2\nsomeone's secret\n",
    )
    .unwrap();

    let mut chat = spawn(dir.path(), &["--user", "una"]);
    say(&mut chat, "What is a neural network?");
    quit(chat);
    let una = dir.path().join("history/una.txt");
    let text = std::fs::read_to_string(&una).expect("una's history");
    assert!(text.contains("What is a neural network?"), "{text}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&una), 0o600);
        assert_eq!(mode(&dir.path().join("history")), 0o700);
    }
    assert!(
        !dir.path().join("chat_history.txt").exists(),
        "the shared file of earlier versions is removed"
    );

    let mut chat = spawn(dir.path(), &["--user", "vic", "--no-history-file"]);
    say(&mut chat, "What is a decision tree?");
    quit(chat);
    assert!(
        !dir.path().join("history/vic.txt").exists(),
        "--no-history-file keeps none"
    );
    let una_after = std::fs::read_to_string(&una).unwrap();
    assert!(!una_after.contains("decision tree"), "{una_after}");
}
