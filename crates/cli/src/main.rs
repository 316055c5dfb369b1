//! `ragchat`: the one binary. `main` parses the command line, sets up logging, and
//! hands a typed configuration to the command's module under `cmd/`.

mod cmd;
mod config;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::GlobalArgs;

/// A chatbot over your own documents that never loses a conversation.
#[derive(Debug, Parser)]
#[command(name = "ragchat", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and manage stored conversations.
    #[command(subcommand)]
    Sessions(cmd::sessions::SessionsCommand),
    /// Measure performance (conversation memory turns).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(config::normalize_redis_flag(std::env::args_os()));
    init_logging();
    // Client commands run on one thread: a single conversation gains nothing from a
    // second worker, and cross-thread wake-ups would add to every store round trip.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sessions(c) => cmd::sessions::run(&cli.global, c).await,
            Command::Bench(c) => cmd::bench::run(&cli.global, c).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// Exit codes scripts can branch on: 2 = bad input, 3 = not found, 4 = store unavailable.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    use ragchat_memory::MemoryError;
    match e.downcast_ref::<MemoryError>() {
        Some(MemoryError::InvalidInput(_)) => 2,
        Some(MemoryError::NotFound(_)) => 3,
        Some(MemoryError::Unavailable { .. }) => 4,
        _ => 1,
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RAGCHAT_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
