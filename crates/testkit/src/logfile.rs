//! The log file a test server writes: opened for each launch with a marker line, read
//! from a launch's start, and its last lines for panic messages. Shared by the Redis and
//! PostgreSQL servers.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Lines of the log a failure message shows.
pub(crate) const LOG_TAIL_LINES: usize = 60;

/// Opens `path` for appending, writes a line marking this launch of `program` (for people
/// reading the log) and returns the file with the offset where the launch's output begins
/// (for code reading it, see [`read_from`]).
pub(crate) fn open_for_launch(path: &Path, program: &str, port: u16) -> (File, u64) {
    let mut log = File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let _ = writeln!(
        log,
        "### ragchat-testkit: starting {program} on port {port}"
    );
    let offset = log.metadata().map_or(0, |m| m.len());
    (log, offset)
}

/// What the log holds from `offset` on (lossy UTF-8; empty when it cannot be read).
pub(crate) fn read_from(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        if file.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last [`LOG_TAIL_LINES`] lines of `log`.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}
