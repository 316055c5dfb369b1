//! Finding PostgreSQL's binaries and the account to run them as, and the template cluster
//! every test server copies (made once per machine by `initdb`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::POSTGRES_SUPERUSER;

/// The account and binaries a server runs with, found once per process.
#[derive(Clone, Debug)]
pub(super) struct Setup {
    pub(super) bin: PathBuf,
    /// `(uid, gid)` to run as, when the test process is root.
    pub(super) run_as: Option<(u32, u32)>,
    /// A cluster made by `initdb`, copied for every server.
    pub(super) template: PathBuf,
}

static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();

/// The directory holding `initdb` and `postgres`.
pub(super) fn find_bin() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("RAGCHAT_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has_server(d));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_server(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| has_server(dir))
}

pub(super) fn setup() -> Result<Setup, String> {
    SETUP.get_or_init(prepare).clone()
}

fn prepare() -> Result<Setup, String> {
    let bin = find_bin().ok_or("initdb and postgres not found")?;
    let run_as = if is_root() {
        let account = std::env::var("RAGCHAT_PG_USER").unwrap_or_else(|_| "postgres".into());
        Some(account_ids(&account)?)
    } else {
        None
    };
    let template = template_cluster(&bin, run_as)?;
    Ok(Setup {
        bin,
        run_as,
        template,
    })
}

/// The shared template cluster, made by `initdb` if no process made it before.
///
/// Made under a name of this process's own and renamed into place, so processes racing
/// to make it never see a half-made one; the loser removes its copy.
fn template_cluster(bin: &Path, run_as: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let owner = run_as.map_or_else(current_uid, |(uid, _)| uid);
    let bin_hash = bin
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    let template = std::env::temp_dir().join(format!(
        "ragchat-testkit-pg-template-{owner}-{bin_hash:016x}"
    ));
    if template.join("PG_VERSION").is_file() {
        return Ok(template);
    }
    let scratch = tempfile::Builder::new()
        .prefix("ragchat-pg-initdb-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for initdb: {e}"))?;
    let data = scratch.path().join("data");
    if let Some((uid, gid)) = run_as {
        chown_tree(scratch.path(), uid, gid).map_err(|e| format!("chown: {e}"))?;
    }
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", POSTGRES_SUPERUSER, "-A", "trust", "-E", "UTF8"])
        .args(["--locale=C", "--no-sync", "--no-instructions"])
        .stdin(Stdio::null());
    if let Some((uid, gid)) = run_as {
        initdb.uid(uid).gid(gid);
    }
    let output = initdb
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if fs::rename(&data, &template).is_err() && !template.join("PG_VERSION").is_file() {
        return Err(format!(
            "cannot move the template cluster to {}",
            template.display()
        ));
    }
    Ok(template)
}

pub(super) fn current_uid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(u32::MAX)
}

pub(super) fn is_root() -> bool {
    current_uid() == 0
}

/// The uid and gid of `account`, read from `id`.
fn account_ids(account: &str) -> Result<(u32, u32), String> {
    let read = |flag: &str| -> Result<u32, String> {
        let output = Command::new("id")
            .args([flag, account])
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "PostgreSQL refuses to run as root and there is no account {account:?} to \
                     run it as (set RAGCHAT_PG_USER to an unprivileged account)"
                )
            })
    };
    Ok((read("-u")?, read("-g")?))
}

/// Copies a directory tree, keeping permission bits (PostgreSQL insists on 0700 data).
pub(super) fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Hands a directory tree to `uid:gid` and keeps it private to that account.
pub(super) fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    if fs::metadata(dir)?.is_dir() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                chown_tree(&path, uid, gid)?;
            } else {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            }
        }
    }
    Ok(())
}
