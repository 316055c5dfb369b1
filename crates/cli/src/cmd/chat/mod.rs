//! `ragchat chat`: talk to your documents.
//!
//! In a terminal: a line-editing REPL with input history, streamed answers, numbered
//! sources and slash commands. From a pipe: one message per line, each echoed as
//! `> question` before its answer so a transcript reads well, no prompts or colours;
//! `--json` makes every output line a JSON object.
//!
//! - [`piped`]: piped input and `--json`;
//! - [`repl`]: the terminal REPL and what it asks before deleting;
//! - [`commands`]: the slash commands both share;
//! - [`render`]: how sources, status, warnings and greetings are shown;
//! - [`history`]: the per-user file of typed lines.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ragchat_memory::{SessionKey, DEFAULT_SESSION};

use crate::config::GlobalArgs;
use crate::engine_setup::{build_engine, EngineArgs};
use crate::output;

mod commands;
pub(crate) mod history;
mod piped;
mod render;
mod repl;

/// `ragchat chat` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChatArgs {
    /// Who is chatting [default: $USER, else "local"].
    #[arg(long, short)]
    pub user: Option<String>,
    /// Conversation to continue or start.
    #[arg(long, short, default_value = DEFAULT_SESSION)]
    pub session: String,
    /// One JSON object per output line (for scripts; implies no prompts).
    #[arg(long)]
    pub json: bool,
    /// Do not ask before deleting: `/reset` acts like `/reset!`.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Keep the lines typed in the terminal in memory only, not in
    /// <data dir>/history/<user>.txt.
    #[arg(long, env = "RAGCHAT_NO_HISTORY_FILE")]
    pub no_history_file: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The default user: `$USER` when it is a valid id, else `local`.
pub(crate) fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| ragchat_memory::message::validate_id("user", u).is_ok())
        .unwrap_or_else(|| "local".to_string())
}

/// Runs `chat`.
pub(crate) async fn run(global: &GlobalArgs, args: ChatArgs) -> Result<ExitCode> {
    let user = args.user.clone().unwrap_or_else(default_user);
    let key = SessionKey::new(&user, &args.session)?;
    let interactive =
        !args.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let show_progress = std::io::stderr().is_terminal() && !args.json;
    let (engine, report) = build_engine(global, &args.engine, show_progress, true).await?;
    let history = history::HistoryFile::for_user(&global.data_dir(), key.user());
    if !interactive {
        // The REPL shows it with the other warnings when it starts.
        if let Some(warning) = engine.memory().ttl_warning() {
            eprintln!("warning: {warning}");
        }
    }
    let result = if interactive {
        let options = repl::ReplOptions {
            history,
            use_history_file: !args.no_history_file,
            assume_yes: args.yes,
            data_dir: global.data_dir(),
        };
        repl::run(&engine, key, &report, options).await
    } else {
        let options = piped::PipedOptions {
            json: args.json,
            yes: args.yes,
        };
        piped::run(&engine, key, options, &history).await
    };
    output::warn_if_degraded(engine.memory()).await;
    result
}
