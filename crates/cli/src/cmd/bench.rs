//! `ragchat bench`: measure ragchat on your own machine and store.
//!
//! `bench memory` times the conversation-memory part of a chat turn: read the history
//! (one coherent cached read) and append a user and an assistant message (one atomic
//! append), single client, against sessions that already hold N messages.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Subcommand;
use hdrhistogram::Histogram;
use ragchat_memory::{Message, SessionKey, SessionManager};
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::output;

/// `ragchat bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load a running `ragchat serve` over HTTP: turns/s, p50, p99, errors.
    Http(super::bench_http::HttpBenchArgs),
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
        /// One JSON object per history size: {"store","history","turns","turns_per_s","p50_ms","p99_ms",...}.
        #[arg(long)]
        json: bool,
    },
}

/// Result of one history size.
#[derive(Debug, Serialize)]
pub struct MemoryBenchResult {
    /// Store URL (redacted).
    pub store: String,
    /// Messages in the session when timing started.
    pub history: u64,
    /// Timed turns.
    pub turns: u64,
    /// Turns per second, single client.
    pub turns_per_s: f64,
    /// Median turn latency.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest turn.
    pub max_ms: f64,
    /// Median of the history read alone.
    pub read_p50_ms: f64,
    /// Median of the append alone.
    pub append_p50_ms: f64,
}

/// Runs a `bench` subcommand.
pub async fn run(global: &GlobalArgs, command: BenchCommand) -> Result<ExitCode> {
    match command {
        BenchCommand::Http(args) => super::bench_http::run(global, args).await,
        BenchCommand::Memory {
            history,
            turns,
            warmup,
            message_bytes,
            json,
        } => {
            if turns == 0 {
                bail!("--turns must be at least 1");
            }
            let manager = global.open_manager().await?;
            if manager.status().await?.pending_sync > 0 {
                eprintln!("note: the store is unreachable; measuring degraded mode (appends go to the local journal)");
            }
            let mut results = Vec::new();
            for n in history {
                if !json {
                    eprintln!(
                        "bench: {n} messages of history, {turns} turns on {} ...",
                        manager.store_url()
                    );
                }
                let r = bench_memory(&manager, n, turns, warmup, message_bytes).await?;
                if json {
                    output::json_line(&r)?;
                }
                results.push(r);
            }
            if !json {
                let mut t = output::table(&[
                    "history",
                    "turns/s",
                    "p50 ms",
                    "p99 ms",
                    "p99.9 ms",
                    "read p50",
                    "append p50",
                ]);
                for r in &results {
                    t.add_row(vec![
                        r.history.to_string(),
                        format!("{:.0}", r.turns_per_s),
                        format!("{:.3}", r.p50_ms),
                        format!("{:.3}", r.p99_ms),
                        format!("{:.3}", r.p999_ms),
                        format!("{:.3}", r.read_p50_ms),
                        format!("{:.3}", r.append_p50_ms),
                    ]);
                }
                println!("store: {}\n{t}", manager.store_url());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn text(bytes: usize, i: u64) -> String {
    let mut s = format!("message {i}: ");
    while s.len() < bytes {
        s.push_str("lorem ipsum dolor sit amet ");
    }
    s.truncate(bytes);
    s
}

async fn bench_memory(
    manager: &SessionManager,
    history: u64,
    turns: u64,
    warmup: u64,
    message_bytes: usize,
) -> Result<MemoryBenchResult> {
    let key = SessionKey::new("bench", format!("bench-{}", Message::user("x").id))?;
    // Fill the session with `history` messages, in batches.
    let mut written = 0;
    while written < history {
        let batch: Vec<Message> = (written..history.min(written + 500))
            .map(|i| {
                if i % 2 == 0 {
                    Message::user(text(message_bytes, i))
                } else {
                    Message::assistant(text(message_bytes, i))
                }
            })
            .collect();
        written += batch.len() as u64;
        manager.append(&key, batch).await?;
    }
    let turn = |i: u64| {
        let key = key.clone();
        async move {
            let t0 = Instant::now();
            let h = manager.history(&key).await?;
            let n = h.len();
            drop(h);
            let t1 = Instant::now();
            manager
                .append(
                    &key,
                    vec![
                        Message::user(text(message_bytes, i)),
                        Message::assistant(text(message_bytes, i + 1)),
                    ],
                )
                .await?;
            let t2 = Instant::now();
            anyhow::Ok((n, t1 - t0, t2 - t1))
        }
    };
    for i in 0..warmup {
        turn(i).await?;
    }
    let mut total = Histogram::<u64>::new(3)?;
    let mut reads = Histogram::<u64>::new(3)?;
    let mut appends = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for i in 0..turns {
        let (n, read, append) = turn(i).await?;
        if n == 0 && history > 0 {
            bail!("the session lost its history during the benchmark");
        }
        total.record(nanos(read + append))?;
        reads.record(nanos(read))?;
        appends.record(nanos(append))?;
    }
    let elapsed = started.elapsed();
    // Clean up; in degraded mode the store cannot delete, so drop the bench session's
    // journaled messages instead of replaying benchmark data into the store later.
    if let Err(e) = manager.delete(&key).await {
        match manager.journal() {
            Some(journal) => {
                journal.remove_session(&key).await?;
            }
            None => return Err(e.into()),
        }
    }
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    Ok(MemoryBenchResult {
        store: manager.store_url(),
        history,
        turns,
        turns_per_s: turns as f64 / elapsed.as_secs_f64(),
        p50_ms: ms(&total, 0.5),
        p99_ms: ms(&total, 0.99),
        p999_ms: ms(&total, 0.999),
        max_ms: total.max() as f64 / 1e6,
        read_p50_ms: ms(&reads, 0.5),
        append_p50_ms: ms(&appends, 0.5),
    })
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
