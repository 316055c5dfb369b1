//! Skipping a test that lacks a tool, visibly.
//!
//! cargo counts a test that returns early as passed, so a machine without `redis-server`
//! would report "10 passed" while nine of them did nothing. Every skip therefore goes
//! through [`skip`]: it prints `skipping: <reason>` on stderr (shown by `--nocapture`)
//! and, when [`SKIP_LOG_ENV`] names a file, appends one line to it that
//! `scripts/test` counts and prints after cargo's own summary:
//!
//! ```text
//! chat_cli::a_second_process_resumes_on_redis<TAB>redis-server not installed
//! ```
//!
//! With `CI` set a skip is a failure instead: CI installs every tool, so a missing one
//! means the setup broke and the test must not pass silently.

use std::io::Write;

/// Environment variable naming the file that skips are appended to (one line each).
pub const SKIP_LOG_ENV: &str = "RAGCHAT_SKIP_LOG";

/// Marks the running test as skipped for `reason`; the caller then returns early.
///
/// Prints `skipping: <reason>` on stderr and appends `<test>\t<reason>` to the file
/// named by [`SKIP_LOG_ENV`] when it is set. `<test>` is the test binary's name and the
/// test's own name (libtest runs each test on a thread named after it), e.g.
/// `chat_cli::a_second_process_resumes_on_redis`.
///
/// # Panics
///
/// When the `CI` environment variable is set: CI must run every test. Not when the log
/// cannot be written (the note on stderr still says why the test did nothing).
pub fn skip(reason: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{reason}, and CI must run this test (scripts/test installs what the tests need)"
    );
    eprintln!("skipping: {reason}");
    let Some(log) = std::env::var_os(SKIP_LOG_ENV) else {
        return;
    };
    let log = std::path::Path::new(&log);
    if let Err(e) = record(log, &test_name(), reason) {
        eprintln!("cannot record the skip in {}: {e}", log.display());
    }
}

/// Appends `<test>\t<reason>\n` to `log`.
fn record(log: &std::path::Path, test: &str, reason: &str) -> std::io::Result<()> {
    // Tabs and newlines would break the one-record-per-line format.
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let line = format!("{}\t{}\n", clean(test), clean(reason));
    // One write of one short line in append mode: lines of tests running in parallel
    // (threads here, and other test binaries) do not interleave.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?
        .write_all(line.as_bytes())
}

/// `<test binary>::<test>`; the binary's name without cargo's `-<hash>` suffix.
fn test_name() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => stem,
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => binary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_name_is_the_binary_and_the_thread() {
        let name = test_name();
        assert!(
            name.ends_with("skip::tests::the_test_name_is_the_binary_and_the_thread"),
            "{name}"
        );
        assert!(name.starts_with("ragchat_testkit::"), "{name}");
    }

    #[test]
    fn each_skip_is_one_line_of_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("skips.tsv");
        record(&log, "a::one", "redis-server not installed").expect("record");
        record(&log, "b::two", "odd\treason\nover lines").expect("record");
        let text = std::fs::read_to_string(&log).expect("read");
        assert_eq!(
            text,
            "a::one\tredis-server not installed\nb::two\todd reason over lines\n"
        );
    }
}
