//! Private files: the SQLite files ragchat creates (the embedded store, the local
//! journal) hold people's conversations, so they are readable by their owner only.
//!
//! A folder ragchat creates is made 0700; a folder that already exists is left as it
//! is (it may be shared, like `/tmp`). A database file is created 0600 before SQLite
//! opens it, so SQLite gives its `-wal` and `-shm` files the same mode; a file left
//! with a wider mode by an older version is narrowed to 0600 on open.

use std::path::Path;

/// Creates the missing folders of `dir` with mode 0700.
///
/// # Errors
/// The I/O error, for the caller to report with the path.
pub(crate) fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Prepares the SQLite database at `path` for opening: its folder exists (created
/// private), the file exists with mode 0600, and any `-wal`/`-shm` file is 0600 too.
///
/// # Errors
/// The I/O error, for the caller to report with the path.
pub(crate) fn prepare_private_db(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        create_private_dirs(parent)?;
    }
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    drop(open.open(path)?);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        for suffix in ["", "-wal", "-shm"] {
            let file = path.with_file_name(format!("{name}{suffix}"));
            match std::fs::metadata(&file) {
                Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_private_and_old_ones_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.path().join("a/b/s.db");
        prepare_private_db(&db).unwrap();
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(dir.path()), 0o755, "an existing folder is left alone");

        let wal = dir.path().join("a/b/s.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare_private_db(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }
}
