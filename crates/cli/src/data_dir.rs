//! The data dir must be usable before anything is opened in it: a folder that cannot
//! be created or written is its own error (exit 1, naming the path), not "the store is
//! unavailable" (exit 4, which scripts read as "try again later").

use std::path::Path;

use anyhow::{anyhow, Result};

/// Creates `dir` if needed and checks that a file can be created in it. `what` names
/// the folder in the error ("data dir", "folder of the SQLite store").
///
/// # Errors
/// Naming the folder and the reason, with a hint.
pub(crate) fn ensure_writable(dir: &Path, what: &str) -> Result<()> {
    let fail = |e: std::io::Error| {
        anyhow!(
            "the {what} {} cannot be used: {e} (point --data-dir or RAGCHAT_DATA_DIR at a folder you can write)",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".ragchat-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
