//! `ragchat bench`: measure ragchat on your own machine and store.
//!
//! - [`memory`]: `bench memory` times the conversation-memory part of a chat turn, single
//!   client or several, against sessions that already hold N messages.
//! - [`http`]: `bench http` loads running `ragchat serve` processes over HTTP, with the
//!   load itself (concurrent clients and their conversations) in [`load`].
//! - [`rehydrate`]: `bench rehydrate` times loading conversations back from the archive.
//! - [`search`]: `bench search` times searching one user's messages among many users',
//!   and with `--turns` what recall adds to a chat turn (`recall`), both over the
//!   pseudo-English of `words`.

pub(crate) mod http;
pub(crate) mod load;
pub(crate) mod memory;
mod recall;
pub(crate) mod rehydrate;
pub(crate) mod search;
mod words;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::config::GlobalArgs;

/// `ragchat bench ...`
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Load a running `ragchat serve` over HTTP: turns/s, p50, p99, errors.
    Http(http::HttpBenchArgs),
    /// Time loading conversations back from the archive (needs --archive).
    Rehydrate(rehydrate::RehydrateArgs),
    /// Time searches of one user's messages in a store holding many users' (needs a
    /// store that searches).
    Search(search::SearchBenchArgs),
    /// Time memory turns (read history + append two messages) at several conversation lengths.
    Memory {
        /// Messages already in the session before timing; comma-separated for several runs.
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000,10000")]
        history: Vec<u64>,
        /// Timed turns per history size.
        #[arg(long, default_value_t = 2000)]
        turns: u64,
        /// Untimed turns before timing starts.
        #[arg(long, default_value_t = 200)]
        warmup: u64,
        /// Bytes of each benchmark message.
        #[arg(long, default_value_t = 300)]
        message_bytes: usize,
        /// Concurrent clients, each with its own session (turns are split between them).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Leave the bench conversations in the store (to look at them, e.g. Redis's
        /// MEMORY USAGE); by default they are deleted at the end.
        #[arg(long)]
        keep: bool,
        /// One JSON object per history size: {"store","history","turns","turns_per_s","p50_ms","p99_ms",...}.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `bench` subcommand.
pub(crate) async fn run(global: &GlobalArgs, command: BenchCommand) -> Result<ExitCode> {
    match command {
        BenchCommand::Http(args) => http::run(global, args).await,
        BenchCommand::Rehydrate(args) => rehydrate::run(global, args).await,
        BenchCommand::Search(args) => search::run(global, args).await,
        BenchCommand::Memory {
            history,
            turns,
            warmup,
            message_bytes,
            clients,
            keep,
            json,
        } => {
            let options = memory::MemoryBench {
                history,
                turns,
                warmup,
                message_bytes,
                clients,
                keep,
                json,
            };
            memory::run(global, options).await
        }
    }
}
