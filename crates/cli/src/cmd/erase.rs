//! `ragchat sessions erase --user U`: everything of one user, gone.
//!
//! Deletes every conversation of the user from the store, the local journal and the
//! caches (as `DELETE /v1/me` does over HTTP), and the user's typed-line history file of
//! the terminal chat (`<data dir>/history/<user>.txt`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::cmd::chat::history::HistoryFile;
use crate::output;

/// `ragchat sessions erase` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct EraseArgs {
    /// User id ([A-Za-z0-9._-], 1-64 chars).
    #[arg(long, short)]
    pub user: String,
    /// JSON: {"user","deleted_sessions","history_file_removed"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Erased<'a> {
    user: &'a str,
    deleted_sessions: usize,
    history_file_removed: bool,
}

/// Erases the user. A user with nothing stored is not an error (nothing to erase).
///
/// # Errors
/// When the store cannot be reached, or the history file exists and cannot be removed.
pub(crate) async fn run(
    manager: &ragchat_memory::SessionManager,
    args: &EraseArgs,
    data_dir: &Path,
) -> Result<ExitCode> {
    let deleted_sessions = manager.delete_user(&args.user).await?;
    let history = HistoryFile::for_user(data_dir, &args.user);
    let history_file_removed = history.remove()?;
    if args.json {
        output::json_line(&Erased {
            user: &args.user,
            deleted_sessions,
            history_file_removed,
        })?;
    } else {
        println!(
            "erased {}: {deleted_sessions} conversation(s) from {}{}",
            args.user,
            manager.store_url(),
            if history_file_removed {
                format!(", and the chat history file {}", history.path().display())
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
