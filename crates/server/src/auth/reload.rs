//! The keys in force ([`KeyRing`]): loaded at start, re-read on SIGHUP.
//!
//! A reload that fails must never leave a revoked key working. So when the file cannot
//! be used:
//!
//! - it does not parse: only the keys listed both in the last file that loaded and on
//!   a valid line of the new one stay in force (a key the edit removed stops working;
//!   one it added waits until the file is fixed);
//! - it cannot be read: if it looks unchanged since it last loaded (same size,
//!   modification time and inode) its keys stay in force; otherwise (gone, replaced,
//!   changed) no key is accepted until it can be read.
//!
//! Either way the error is logged and kept for `/readyz` until a reload succeeds.
//!
//! A file readable by group or others that holds keys in clear, or one they can write,
//! is warned about (logged, and shown in `/readyz`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use super::keys_file::{ApiKeys, KeysError};

/// What identifies a file's content without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Fingerprint {
    fn of(path: &Path) -> Option<Fingerprint> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// The last file that loaded in full.
#[derive(Debug)]
struct LastGood {
    keys: Arc<ApiKeys>,
    fingerprint: Option<Fingerprint>,
}

/// The keys in force and what the last load said about the file.
#[derive(Debug)]
pub struct KeyRing {
    path: PathBuf,
    current: RwLock<Arc<ApiKeys>>,
    last_good: Mutex<LastGood>,
    /// Why the last reload failed, until one succeeds.
    reload_error: Mutex<Option<String>>,
    /// What is wrong with the file's permissions, as of the last load.
    permissions: Mutex<Vec<String>>,
}

impl KeyRing {
    /// Loads the keys file at `path`. Problems with its permissions are kept for
    /// [`KeyRing::warnings`] (a reload logs them).
    ///
    /// # Errors
    /// `Read` when it cannot be read; as [`ApiKeys::parse`] otherwise.
    pub fn load(path: PathBuf) -> Result<Self, KeysError> {
        let fingerprint = Fingerprint::of(&path);
        let text = read(&path)?;
        let keys = Arc::new(ApiKeys::parse(&text, &path)?);
        // Shown by whoever loads the file (`ragchat serve` prints them at start).
        let permissions = permission_warnings(&path, &keys);
        Ok(KeyRing {
            current: RwLock::new(Arc::clone(&keys)),
            last_good: Mutex::new(LastGood { keys, fingerprint }),
            reload_error: Mutex::new(None),
            permissions: Mutex::new(permissions),
            path,
        })
    }

    /// The keys file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys in force now.
    pub fn current(&self) -> Arc<ApiKeys> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Re-reads the file; returns how many keys are in force. On failure, what stays in
    /// force is described in the module docs, and the error is kept for
    /// [`KeyRing::warnings`].
    ///
    /// # Errors
    /// Why the file was refused.
    pub fn reload(&self) -> Result<usize, KeysError> {
        let fingerprint = Fingerprint::of(&self.path);
        let mut last_good = self.last_good.lock().unwrap_or_else(|e| e.into_inner());
        let outcome = match read(&self.path) {
            Ok(text) => {
                let lenient = ApiKeys::parse_lenient(&text, &self.path);
                match lenient.error {
                    None => {
                        let keys = Arc::new(lenient.keys);
                        let permissions = permission_warnings(&self.path, &keys);
                        for warning in &permissions {
                            tracing::warn!("{warning}");
                        }
                        *self.permissions.lock().unwrap_or_else(|e| e.into_inner()) = permissions;
                        *last_good = LastGood {
                            keys: Arc::clone(&keys),
                            fingerprint,
                        };
                        Ok(keys)
                    }
                    Some(error) => {
                        let kept = last_good.keys.also_in(&lenient.keys);
                        let note = format!(
                            "{error}; until the file loads, only the {} key(s) listed both in the last file that loaded and in this one are accepted",
                            kept.len()
                        );
                        Err((error, Arc::new(kept), note))
                    }
                }
            }
            Err(error) if fingerprint.is_some() && fingerprint == last_good.fingerprint => {
                let note = format!(
                    "{error}; the file looks unchanged since it last loaded, so its {} key(s) stay in force",
                    last_good.keys.len()
                );
                Err((error, Arc::clone(&last_good.keys), note))
            }
            Err(error) => {
                let note = format!("{error}; no key is accepted until the file can be read");
                Err((error, Arc::new(ApiKeys::default()), note))
            }
        };
        drop(last_good);
        let (keys, result) = match outcome {
            Ok(keys) => {
                *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let count = keys.len();
                (keys, Ok(count))
            }
            Err((error, kept, note)) => {
                tracing::error!("cannot reload the API keys: {note}");
                *self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("the API keys file did not reload: {note}"));
                (kept, Err(error))
            }
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = keys;
        result
    }

    /// A failed reload and permission problems, for `/readyz`.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self
            .permissions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(error) = &*self.reload_error.lock().unwrap_or_else(|e| e.into_inner()) {
            warnings.push(error.clone());
        }
        warnings
    }
}

fn read(path: &Path) -> Result<String, KeysError> {
    std::fs::read_to_string(path).map_err(|source| KeysError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Warnings about who else can read or write the file.
fn permission_warnings(path: &Path, keys: &ApiKeys) -> Vec<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return Vec::new();
        };
        let mode = meta.permissions().mode();
        let mut warnings = Vec::new();
        if mode & 0o044 != 0 && keys.plaintext_count() > 0 {
            warnings.push(format!(
                "the API keys file {} is readable by group or others (mode {:o}) and holds {} key(s) in clear: \
                 chmod 600 it, or list the keys as sha256:HEX",
                path.display(),
                mode & 0o777,
                keys.plaintext_count()
            ));
        }
        if mode & 0o022 != 0 {
            warnings.push(format!(
                "the API keys file {} is writable by group or others (mode {:o}): whoever can write it can add keys; chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
        warnings
    }
    #[cfg(not(unix))]
    {
        let _ = (path, keys);
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "alice-key-0123456789";
    const BOB: &str = "bob-key-0123456789abc";

    fn ring(text: &str) -> (tempfile::TempDir, PathBuf, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, text).unwrap();
        let ring = KeyRing::load(path.clone()).unwrap();
        (dir, path, ring)
    }

    #[test]
    fn a_good_reload_replaces_the_keys() {
        let (_dir, path, ring) = ring(&format!("{ALICE} alice\n"));
        std::fs::write(&path, format!("{BOB} bob\n")).unwrap();
        assert_eq!(ring.reload().unwrap(), 1);
        assert_eq!(ring.current().user_for(BOB), Some("bob"));
        assert_eq!(ring.current().user_for(ALICE), None);
        assert!(ring
            .warnings()
            .iter()
            .all(|w| !w.contains("did not reload")));
    }

    #[test]
    fn a_malformed_file_keeps_only_keys_in_both() {
        let (_dir, path, ring) = ring(&format!("{ALICE} alice\n{BOB} bob\n"));
        // Bob revoked, carol added, one line broken.
        std::fs::write(
            &path,
            format!("{ALICE} alice\ncarol-key-0123456789 carol\noops\n"),
        )
        .unwrap();
        assert!(ring.reload().is_err());
        let keys = ring.current();
        assert_eq!(keys.user_for(ALICE), Some("alice"));
        assert_eq!(keys.user_for(BOB), None, "the revoked key stops working");
        assert_eq!(keys.user_for("carol-key-0123456789"), None);
        let warnings = ring.warnings().join("\n");
        assert!(
            warnings.contains("line 3") && warnings.contains("only the 1 key"),
            "{warnings}"
        );

        // A second broken edit still compares with the last file that loaded.
        std::fs::write(&path, format!("{BOB} bob\noops\n")).unwrap();
        assert!(ring.reload().is_err());
        assert_eq!(ring.current().user_for(BOB), Some("bob"));
        assert_eq!(ring.current().user_for(ALICE), None);
    }

    #[test]
    fn a_missing_file_accepts_no_key() {
        let (_dir, path, ring) = ring(&format!("{ALICE} alice\n"));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(ring.reload(), Err(KeysError::Read { .. })));
        assert!(ring.current().is_empty());
        assert!(ring.warnings().join("").contains("no key is accepted"));
        std::fs::write(&path, format!("{ALICE} alice\n")).unwrap();
        assert_eq!(ring.reload().unwrap(), 1);
        assert!(
            ring.warnings()
                .iter()
                .all(|w| !w.contains("did not reload")),
            "{:?}",
            ring.warnings()
        );
    }

    #[test]
    fn an_unreadable_but_unchanged_file_keeps_its_keys() {
        // A directory has a fingerprint but cannot be read as text: it stands for a
        // file that fails to read while its metadata did not change.
        let (dir, _path, loaded) = ring(&format!("{ALICE} alice\n"));
        let unreadable = KeyRing {
            path: dir.path().to_path_buf(),
            current: RwLock::new(loaded.current()),
            last_good: Mutex::new(LastGood {
                keys: loaded.current(),
                fingerprint: Fingerprint::of(dir.path()),
            }),
            reload_error: Mutex::new(None),
            permissions: Mutex::new(Vec::new()),
        };
        assert!(unreadable.reload().is_err());
        assert_eq!(unreadable.current().user_for(ALICE), Some("alice"));
        assert!(unreadable.warnings().join("").contains("looks unchanged"));
    }

    #[cfg(unix)]
    #[test]
    fn loose_permissions_are_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path, ring) = ring(&format!("{ALICE} alice\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        ring.reload().unwrap();
        assert!(ring
            .warnings()
            .join("")
            .contains("readable by group or others"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        ring.reload().unwrap();
        assert!(ring.warnings().is_empty(), "{:?}", ring.warnings());
        // Hashes only: nothing secret to read.
        let hash: String = super::super::keys_file::digest(ALICE.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(&path, format!("sha256:{hash} alice\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        ring.reload().unwrap();
        assert!(ring.warnings().is_empty(), "{:?}", ring.warnings());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        ring.reload().unwrap();
        assert!(ring
            .warnings()
            .join("")
            .contains("writable by group or others"));
    }
}
