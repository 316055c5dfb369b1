//! `ragchat`: the one binary. `main` parses the command line, sets up logging, and
//! hands a typed configuration to the command's module under `cmd/`.

mod cmd;
mod config;
mod data_dir;
mod engine_setup;
mod input;
mod output;
mod retention;
mod terminal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::GlobalArgs;

/// mimalloc rather than the system's malloc (the `mimalloc` feature, on by default): see
/// the feature's note in Cargo.toml.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Chat with your documents (interactive in a terminal; one message per line from a pipe).
    Chat(cmd::chat::ChatArgs),
    /// Index a folder of documents ahead of time.
    Ingest(cmd::ingest::IngestArgs),
    /// Serve the HTTP API and the web chat page.
    Serve(cmd::serve::ServeArgs),
    /// The before/after story: a conversation across a restart, in RAM and in a durable store.
    Demo(cmd::demo::DemoArgs),
    /// Inspect and manage stored conversations.
    #[command(subcommand)]
    Sessions(cmd::sessions::SessionsCommand),
    /// Measure performance (conversation memory turns).
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

/// Transparent huge pages off for this process, unless `MIMALLOC_ALLOW_THP` is set (then
/// mimalloc does as it says). mimalloc asks the kernel for huge pages, which clears 2 MB at
/// the first touch of each, and a growing conversation cache touches new ones all the
/// time. With them off, `ragchat serve` peaked at 46-47 MB instead of 88 at one client and
/// `bench memory` at 50 clients at 56 MB instead of 62-65, serving as many turns a second
/// (BENCHMARKS.md, "Transparent huge pages off"). Redis asks the same of its machines.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // A kernel without the flag (before 3.15) keeps its default: nothing to report.
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}

fn main() -> ExitCode {
    #[cfg(all(feature = "mimalloc", target_os = "linux"))]
    without_huge_pages();
    let mut cli = Cli::parse_from(config::normalize_redis_flag(std::env::args_os()));
    cli.global.long_running = matches!(cli.command, Command::Serve(_) | Command::Chat(_));
    init_logging();
    engine_setup::quiet_pdf_reader_panics();
    // Client commands run on one thread: a single conversation gains nothing from a
    // second worker, and cross-thread wake-ups would add to every store round trip.
    // The server and the HTTP load generator use every core.
    let multi_thread = matches!(cli.command, Command::Serve(_))
        || matches!(
            cli.command,
            Command::Bench(cmd::bench::BenchCommand::Http(_))
        );
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let result = match cli.command {
            Command::Chat(a) => cmd::chat::run(&cli.global, a).await,
            Command::Ingest(a) => cmd::ingest::run(&cli.global, a).await,
            Command::Serve(a) => cmd::serve::run(&cli.global, a).await,
            Command::Demo(a) => cmd::demo::run(&cli.global, a).await,
            Command::Sessions(c) => cmd::sessions::run(&cli.global, c).await,
            Command::Bench(c) => cmd::bench::run(&cli.global, c).await,
        };
        config::flush_archives().await;
        result
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// Exit codes scripts can branch on: 2 = bad input (or over a quota), 3 = not found,
/// 4 = store unavailable, 5 = the store cannot do this (search without a durable tier).
fn exit_code_for(e: &anyhow::Error) -> u8 {
    use ragchat_memory::MemoryError;
    match e.downcast_ref::<MemoryError>() {
        Some(MemoryError::InvalidInput(_) | MemoryError::Quota(_)) => 2,
        Some(MemoryError::NotFound(_)) => 3,
        Some(MemoryError::Unavailable { .. }) => 4,
        Some(MemoryError::Unsupported(_)) => 5,
        // A documents folder that does not exist (or is not a folder) is bad input too.
        _ if matches!(
            e.downcast_ref::<ragchat_rag::RagError>(),
            Some(ragchat_rag::RagError::InvalidInput(_))
        ) =>
        {
            2
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `on|off` option takes its value as the README writes it (`--recall off`), not
    /// only from its environment variable.
    #[test]
    fn on_off_options_take_a_value() {
        let cli = Cli::try_parse_from([
            "ragchat",
            "--redis-v1-guard",
            "off",
            "--redis-lean-append",
            "off",
            "chat",
            "--recall",
            "off",
            "--recall-across",
            "off",
        ])
        .unwrap();
        assert!(!cli.global.redis_v1_guard);
        assert!(!cli.global.redis_lean_append);
        let Command::Chat(chat) = cli.command else {
            panic!("not chat: {:?}", cli.command);
        };
        assert!(!chat.engine.recall);
        assert_eq!(chat.engine.recall_across, Some(false));

        let cli = Cli::try_parse_from(["ragchat", "serve", "--recall", "on"]).unwrap();
        assert!(cli.global.redis_v1_guard && cli.global.redis_lean_append);
        let Command::Serve(serve) = cli.command else {
            panic!("not serve: {:?}", cli.command);
        };
        assert!(serve.engine.recall);
    }
}
