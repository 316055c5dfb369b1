//! The line-editing history of the terminal chat: one private file per user.
//!
//! What someone types is theirs: each user's lines are kept in
//! `<data dir>/history/<user>.txt`, in a folder only the owner can open (0700) and a file
//! only the owner can read (0600). `/reset` and `ragchat sessions erase` remove the file
//! with the conversations; `chat --no-history-file` keeps nothing on disk.
//!
//! Earlier versions kept every user's lines in one shared `chat_history.txt`; it is removed
//! the first time the terminal chat starts.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Name of the shared history file of earlier versions, in the data dir.
const LEGACY_FILE: &str = "chat_history.txt";

/// Folder of the per-user history files, in the data dir.
const FOLDER: &str = "history";

/// One user's history file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HistoryFile {
    path: PathBuf,
}

impl HistoryFile {
    /// The history file of `user` (a validated user id, so a safe file name) under `data_dir`.
    pub(crate) fn for_user(data_dir: &Path, user: &str) -> HistoryFile {
        HistoryFile {
            path: data_dir.join(FOLDER).join(format!("{user}.txt")),
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the saved lines into `editor`; a missing or unreadable file loads nothing.
    pub(crate) fn load_into<H: rustyline::Helper>(
        &self,
        editor: &mut rustyline::Editor<H, rustyline::history::DefaultHistory>,
    ) {
        if self.path.exists() {
            if let Err(e) = editor.load_history(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the chat history");
            }
        }
    }

    /// Saves the editor's lines, creating the folder (0700) when needed; the file is 0600.
    ///
    /// # Errors
    /// When the folder or the file cannot be written.
    pub(crate) fn save_from<H: rustyline::Helper>(
        &self,
        editor: &mut rustyline::Editor<H, rustyline::history::DefaultHistory>,
    ) -> Result<()> {
        let Some(folder) = self.path.parent() else {
            return Ok(());
        };
        create_private_dir(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        editor
            .save_history(&self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        restrict(&self.path, 0o600)
            .with_context(|| format!("cannot restrict {}", self.path.display()))
    }

    /// Removes the file. Returns whether there was one.
    ///
    /// # Errors
    /// When it exists and cannot be removed.
    pub(crate) fn remove(&self) -> Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", self.path.display())),
        }
    }
}

/// Removes the shared history file of earlier versions, if any; returns its path when it
/// was removed.
pub(crate) fn remove_legacy_file(data_dir: &Path) -> Option<PathBuf> {
    let legacy = data_dir.join(LEGACY_FILE);
    std::fs::remove_file(&legacy).ok().map(|()| legacy)
}

fn create_private_dir(folder: &Path) -> io::Result<()> {
    if !folder.exists() {
        std::fs::create_dir_all(folder)?;
    }
    restrict(folder, 0o700)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_private_file_per_user() {
        let dir = tempfile::tempdir().expect("temp dir");
        let alice = HistoryFile::for_user(dir.path(), "alice");
        assert_eq!(alice.path(), dir.path().join("history/alice.txt"));
        let mut editor = rustyline::DefaultEditor::new().expect("editor");
        editor.add_history_entry("my secret question").expect("add");
        alice.save_from(&mut editor).expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode(alice.path()), 0o600);
            assert_eq!(mode(&dir.path().join("history")), 0o700);
        }
        let text = std::fs::read_to_string(alice.path()).expect("read");
        assert!(text.contains("my secret question"), "{text}");
        assert!(alice.remove().expect("remove"));
        assert!(!alice.remove().expect("remove again"));
    }
}
