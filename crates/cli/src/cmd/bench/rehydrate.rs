//! `ragchat bench rehydrate`: how long the first turn on a conversation that left
//! Redis takes, when it is loaded back from the archive (`--archive`): conversations
//! of N messages are written, archived, let go from Redis, and read again one by one.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::output;

/// `bench rehydrate`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RehydrateArgs {
    /// Messages in each conversation.
    #[arg(long, default_value_t = 1000)]
    pub messages: u64,
    /// Conversations loaded back (one timing each).
    #[arg(long, default_value_t = 50)]
    pub sessions: u64,
    /// Bytes of each message.
    #[arg(long, default_value_t = 300)]
    pub message_bytes: usize,
    /// One JSON object: {"store","messages","sessions","p50_ms","p99_ms","max_ms"}.
    #[arg(long)]
    pub json: bool,
}

/// What `bench rehydrate` found.
#[derive(Debug, Serialize)]
struct RehydrateResult {
    store: String,
    messages: u64,
    sessions: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Runs `bench rehydrate`.
pub(crate) async fn run(global: &GlobalArgs, args: RehydrateArgs) -> Result<ExitCode> {
    if global.archive.is_none() {
        bail!(ragchat_memory::MemoryError::InvalidInput(
            "bench rehydrate measures loading conversations back from an archive: give \
             --store redis://... and --archive URL"
                .into()
        ));
    }
    let manager = global.open_manager().await?;
    let Some(tiered) = crate::config::opened_tiered() else {
        bail!("no archive was opened");
    };
    let mut keys = Vec::new();
    for _ in 0..args.sessions.max(1) {
        keys.push(super::memory::prefill(&manager, args.messages, args.message_bytes).await?);
    }
    if !args.json {
        eprintln!(
            "bench: archiving {} conversations of {} messages ...",
            keys.len(),
            args.messages
        );
    }
    if tiered.flush(Duration::from_secs(120)).await > 0 {
        bail!("the archive did not catch up within 120 s");
    }
    let mut hist = Histogram::<u64>::new(3)?;
    for key in &keys {
        if !tiered.evict(key).await? {
            bail!("{key} was not archived completely; cannot let it go from Redis");
        }
        // A fresh manager per read, so no RAM cache answers instead of the archive.
        let reader =
            ragchat_memory::SessionManager::new(manager.store().clone(), manager.config().clone());
        let started = Instant::now();
        let history = reader.history(key).await?;
        hist.record(started.elapsed().as_nanos().min(u64::MAX as u128) as u64)?;
        if history.is_empty() {
            bail!("{key} came back empty");
        }
    }
    for key in &keys {
        manager.delete(key).await?;
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1e6;
    let result = RehydrateResult {
        store: manager.store_url(),
        messages: args.messages,
        sessions: keys.len() as u64,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1e6,
    };
    if args.json {
        output::json_line(&result)?;
    } else {
        println!(
            "store: {}\nfirst read of a {}-message conversation loaded back from the archive \
             ({} conversations): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            result.store,
            result.messages,
            result.sessions,
            result.p50_ms,
            result.p99_ms,
            result.max_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
