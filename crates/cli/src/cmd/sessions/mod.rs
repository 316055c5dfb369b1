//! `ragchat sessions`: inspect and manage stored conversations from the shell.
//! `rename` lives in [`rename`], `search` in [`search`], `migrate` (copying a whole
//! store into another) in [`migrate`].

mod migrate;
mod rename;
mod search;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use ragchat_memory::{MemoryError, Role, SessionKey, DEFAULT_SESSION};
use ragchat_memory::{Message, ReplayReport};
use serde::Serialize;

use crate::cmd::paged;
use crate::config::GlobalArgs;
use crate::output;
use crate::terminal::visible;

/// Which conversation a command is about.
#[derive(Debug, Clone, Args)]
pub(crate) struct KeyArgs {
    /// User id ([A-Za-z0-9._-], 1-64 chars).
    #[arg(long, short)]
    pub user: String,
    /// Session id ([A-Za-z0-9._-], 1-64 chars).
    #[arg(long, short, default_value = DEFAULT_SESSION)]
    pub session: String,
}

impl KeyArgs {
    fn key(&self) -> Result<SessionKey> {
        Ok(SessionKey::new(&self.user, &self.session)?)
    }
}

/// `ragchat sessions ...`
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// Append one message to a conversation.
    Add {
        #[command(flatten)]
        key: KeyArgs,
        /// Who wrote it.
        #[arg(long, value_parser = ["user", "assistant", "system"], default_value = "user")]
        role: String,
        /// The message text; "-" reads it from standard input.
        text: String,
        /// Print the stored message as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a conversation's messages.
    Show {
        #[command(flatten)]
        key: KeyArgs,
        /// JSON: {"user","session","messages":[...]}.
        #[arg(long)]
        json: bool,
    },
    /// Message count, bytes, TTL remaining and timestamps of a conversation.
    Stats {
        #[command(flatten)]
        key: KeyArgs,
        /// JSON: {"user","session","title","message_count","bytes","ttl_remaining_secs","created_at","updated_at","store"}.
        #[arg(long)]
        json: bool,
    },
    /// A user's conversations, most recent activity first.
    List {
        /// User id.
        #[arg(long, short)]
        user: String,
        /// JSON: {"sessions":[{"session","title","message_count","updated_at","ttl_remaining_secs",...}]};
        /// with an archive each also has "tier": "hot" (in Redis) or "archived".
        #[arg(long)]
        json: bool,
    },
    /// Give a conversation a title (shown by `list` and on the chat page), or clear it
    /// back to its first question.
    Rename {
        /// User id.
        #[arg(long, short)]
        user: String,
        /// Session id.
        session: String,
        /// The new title: one line, 1 to 200 characters after trimming.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        title: Option<String>,
        /// Clear the given title: the conversation is titled by its first question again.
        #[arg(long)]
        clear: bool,
        /// JSON: the conversation's stats, as `stats --json` prints them (with "title").
        #[arg(long)]
        json: bool,
    },
    /// Search a user's messages (needs sqlite://, postgres:// or Redis with --archive).
    Search(search::SearchArgs),
    /// Delete a conversation (every key of it, everywhere).
    Delete {
        #[command(flatten)]
        key: KeyArgs,
        /// JSON: {"deleted": bool}.
        #[arg(long)]
        json: bool,
    },
    /// Replay messages kept in the local journal (while Redis was down) to the store now.
    /// Messages the journal keeps for another store are reported, never replayed here.
    Sync {
        /// JSON: {"sessions","replayed","already_stored","remaining","error","other_stores":[{"store","entries","bytes"}]}.
        #[arg(long)]
        json: bool,
        /// Replay into this store the journal entries written before ragchat recorded
        /// which store an entry is for (they are otherwise kept and reported).
        #[arg(long)]
        adopt_unlabelled: bool,
    },
    /// Export every conversation of a user as JSON.
    Export {
        /// User id.
        #[arg(long, short)]
        user: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Erase a user: every conversation (store, journal, caches) and their chat history file.
    Erase(crate::cmd::erase::EraseArgs),
    /// Copy every conversation from one store into another (e.g. SQLite to PostgreSQL);
    /// safe to run again: nothing is doubled, an interrupted run resumes.
    Migrate(migrate::MigrateArgs),
}

#[derive(Serialize)]
struct AddJson<'a> {
    #[serde(flatten)]
    message: &'a Message,
    /// True when the store was unreachable and the local journal took the message.
    journaled: bool,
}

#[derive(Serialize)]
struct DeleteJson<'a> {
    user: &'a str,
    session: &'a str,
    deleted: bool,
}

/// Runs a `sessions` subcommand.
pub(crate) async fn run(global: &GlobalArgs, command: SessionsCommand) -> Result<ExitCode> {
    // A migration opens its two stores itself: no manager, no journal.
    let command = match command {
        SessionsCommand::Migrate(args) => return migrate::run(global, args).await,
        other => other,
    };
    // Validate ids before touching any store, so bad input never opens a connection.
    match &command {
        SessionsCommand::Add { key, .. }
        | SessionsCommand::Show { key, .. }
        | SessionsCommand::Stats { key, .. }
        | SessionsCommand::Delete { key, .. } => {
            key.key()?;
        }
        SessionsCommand::Rename { user, session, .. } => {
            SessionKey::new(user, session)?;
        }
        SessionsCommand::List { user, .. } | SessionsCommand::Export { user, .. } => {
            ragchat_memory::message::validate_id("user", user)?;
        }
        SessionsCommand::Erase(args) => {
            ragchat_memory::message::validate_id("user", &args.user)?;
        }
        SessionsCommand::Search(args) => args.query().map(drop)?,
        SessionsCommand::Sync { .. } | SessionsCommand::Migrate(_) => {}
    }
    let replay_now = !matches!(command, SessionsCommand::Sync { .. });
    let manager = global.open_manager_with(replay_now).await?;
    let result = run_with(&manager, command, &global.data_dir()).await;
    output::warn_if_degraded(&manager).await;
    result
}

async fn run_with(
    manager: &ragchat_memory::SessionManager,
    command: SessionsCommand,
    data_dir: &std::path::Path,
) -> Result<ExitCode> {
    match command {
        SessionsCommand::Migrate(_) => {
            unreachable!("`run` hands migrate its own stores before any manager is opened")
        }
        SessionsCommand::Erase(args) => {
            return crate::cmd::erase::run(manager, &args, data_dir).await
        }
        SessionsCommand::Add {
            key,
            role,
            text,
            json,
        } => {
            let text = if text == "-" {
                crate::input::read_stdin_message(manager.config().max_content_bytes)?
            } else {
                text
            };
            let role: Role = role.parse()?;
            let receipt = manager
                .append(&key.key()?, vec![ragchat_memory::Message::new(role, text)])
                .await?;
            let message = &receipt.messages[0];
            if json {
                output::json_line(&AddJson {
                    message,
                    journaled: receipt.journaled,
                })?;
            } else if receipt.journaled {
                println!(
                    "kept {} message {} for {}/{} in the local journal (the store is unreachable)",
                    message.role, message.id, key.user, key.session
                );
            } else {
                println!(
                    "stored {} message {} in {}/{}",
                    message.role, message.id, key.user, key.session
                );
            }
        }
        SessionsCommand::Show { key, json } => {
            // No messages: an existing empty conversation is shown as such; one that does
            // not exist is "not found" (exit 3), as for `stats`. While the store is
            // unreachable, `stats` fails (exit 4) rather than say "not found".
            if manager.stats(&key.key()?).await?.is_none() {
                return Err(MemoryError::NotFound(format!(
                    "no conversation {}/{} in {}",
                    key.user,
                    key.session,
                    manager.store_url()
                ))
                .into());
            }
            if json {
                paged::show_json(manager, &key.key()?).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut pages = paged::MessagePages::new(manager, key.key()?);
            let (mut shown, mut partial, mut corrupt) = (0, false, 0);
            while let Some(page) = pages.next().await? {
                shown += page.messages.len();
                partial |= page.partial;
                corrupt += page.corrupt_skipped;
                for m in &page.messages {
                    let status = match m.status {
                        ragchat_memory::MessageStatus::Complete => "",
                        ragchat_memory::MessageStatus::Incomplete => " (incomplete)",
                    };
                    println!("[{}] {}{}:", output::time(m.created_at), m.role, status);
                    // Stored text is shown, never executed by the terminal.
                    for line in m.content.lines() {
                        println!("  {}", visible(line));
                    }
                    for (i, s) in m.sources.iter().enumerate() {
                        let heading = s
                            .heading
                            .as_deref()
                            .map(|h| format!(" > {h}"))
                            .unwrap_or_default();
                        let cited = match &s.conversation {
                            Some(conversation) => conversation.label(),
                            None => format!("{}{heading}", s.path),
                        };
                        println!("    [{}] {}", i + 1, visible(&cited));
                    }
                }
            }
            if shown == 0 {
                println!("{}/{}: no messages", key.user, key.session);
            }
            if partial {
                eprintln!("warning: the store is unreachable; this history is what this machine kept and may be partial");
            }
            if corrupt > 0 {
                eprintln!(
                    "warning: {corrupt} stored message(s) could not be read and were skipped"
                );
            }
        }
        SessionsCommand::Stats { key, json } => {
            let Some(stats) = manager.stats(&key.key()?).await? else {
                return Err(
                    MemoryError::NotFound(format!("session {}/{}", key.user, key.session)).into(),
                );
            };
            if json {
                output::json_line(&stats)?;
            } else {
                let mut t = output::table(&["", ""]);
                t.set_header(vec![
                    "session",
                    &format!("{}/{}", stats.user, stats.session),
                ]);
                if let Some(title) = &stats.title {
                    t.add_row(vec!["title".to_string(), visible(title).into_owned()]);
                }
                t.add_row(vec![
                    "messages".to_string(),
                    stats.message_count.to_string(),
                ]);
                t.add_row(vec!["size".to_string(), output::bytes(stats.bytes)]);
                t.add_row(vec![
                    "expires in".to_string(),
                    output::ttl(stats.ttl_remaining_secs),
                ]);
                t.add_row(vec![
                    "created".to_string(),
                    format!(
                        "{} ({})",
                        output::time(stats.created_at),
                        output::ago(stats.created_at)
                    ),
                ]);
                t.add_row(vec![
                    "last message".to_string(),
                    format!(
                        "{} ({})",
                        output::time(stats.updated_at),
                        output::ago(stats.updated_at)
                    ),
                ]);
                t.add_row(vec!["store".to_string(), stats.store]);
                t.add_row(vec![
                    "mode".to_string(),
                    format!("{:?}", stats.mode).to_lowercase(),
                ]);
                if stats.pending_sync > 0 {
                    t.add_row(vec![
                        "waiting in journal".to_string(),
                        stats.pending_sync.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        SessionsCommand::List { user, json } => {
            if json {
                paged::list_json(manager, &user).await?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut any = false;
            // One table per page, printed as it is read.
            paged::each_session_page(manager, &user, |sessions| {
                if sessions.is_empty() {
                    return Ok(());
                }
                any = true;
                // A Redis store with an archive says where each conversation is; a
                // store used alone has no tiers, and no column for them.
                let tiered = sessions.iter().any(|s| s.tier.is_some());
                let mut header = vec![
                    "session",
                    "title",
                    "messages",
                    "size",
                    "last message",
                    "expires in",
                ];
                if tiered {
                    header.push("tier");
                }
                let mut t = output::table(&header);
                for s in sessions {
                    let mut row = vec![
                        s.session.clone(),
                        visible(s.title.as_deref().unwrap_or("")).into_owned(),
                        s.message_count.to_string(),
                        output::bytes(s.bytes),
                        output::ago(s.updated_at),
                        output::ttl(s.ttl_remaining_secs),
                    ];
                    if tiered {
                        row.push(output::tier_name(s.tier).to_string());
                    }
                    t.add_row(row);
                }
                println!("{t}");
                Ok(())
            })
            .await?;
            if !any {
                println!("{user} has no conversations in {}", manager.store_url());
            }
        }
        SessionsCommand::Search(args) => search::run(manager, &args).await?,
        SessionsCommand::Rename {
            user,
            session,
            title,
            clear: _,
            json,
        } => {
            // clap makes `title` and `--clear` exclusive, and one of them required.
            let key = SessionKey::new(&user, &session)?;
            rename::run(manager, &key, title.as_deref(), json).await?;
        }
        SessionsCommand::Delete { key, json } => {
            let deleted = manager.delete(&key.key()?).await?;
            if json {
                output::json_line(&DeleteJson {
                    user: &key.user,
                    session: &key.session,
                    deleted,
                })?;
            } else if deleted {
                println!("deleted {}/{}", key.user, key.session);
            } else {
                println!(
                    "{}/{} does not exist; nothing deleted",
                    key.user, key.session
                );
            }
        }
        SessionsCommand::Sync {
            json,
            adopt_unlabelled,
        } => {
            if let (true, Some(j)) = (adopt_unlabelled, manager.journal()) {
                let adopted = j.adopt_unlabelled().await?;
                eprintln!(
                    "adopted {adopted} unlabelled journal message(s) for {}",
                    manager.store_url()
                );
            }
            let mut report = manager.replay_journal().await?;
            if manager.journal().is_none() {
                // This store needs no journal, but an earlier command of the same data
                // dir may have left messages in it for another store.
                report = ReplayReport {
                    other_stores: ragchat_memory::journal::other_stores_in(
                        &data_dir.join("journal.db"),
                        &manager.store().identity(),
                    )
                    .await?,
                    ..report
                };
            }
            for other in &report.other_stores {
                eprintln!(
                    "warning: the local journal keeps {} message(s) for another store, {}; \
                     they are never replayed into {} (run `ragchat --store URL sessions sync` with that store)",
                    other.entries,
                    other.store,
                    manager.store_url()
                );
            }
            if json {
                output::json_line(&report)?;
            } else if manager.journal().is_none() {
                println!(
                    "{} keeps no journal of its own: nothing to replay into it",
                    manager.store_url()
                );
            } else {
                println!(
                    "replayed {} message(s) from {} session(s) to {} ({} were already there); {} still waiting",
                    report.replayed,
                    report.sessions,
                    manager.store_url(),
                    report.already_stored,
                    report.remaining
                );
                if let Some(e) = &report.error {
                    println!("stopped early: {e}");
                }
            }
            if report.remaining > 0 {
                return Ok(ExitCode::from(4));
            }
        }
        SessionsCommand::Export { user, output: path } => {
            // Written as it is read, page by page (one line of JSON).
            let written = paged::export(manager, &user, path.as_deref()).await?;
            if let Some(path) = path {
                eprintln!(
                    "exported {} of conversations of {user} to {}",
                    output::bytes(written),
                    path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
