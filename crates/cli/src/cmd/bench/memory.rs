//! `ragchat bench memory`: times the conversation-memory part of a chat turn: read the
//! history (one coherent cached read) and append a user and an assistant message (one
//! atomic append), against sessions that already hold N messages.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use ragchat_memory::{Message, SessionKey, SessionManager};
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::output;

/// What `bench memory` measures (its flags).
#[derive(Debug, Clone)]
pub(crate) struct MemoryBench {
    /// Messages already in the session before timing, one run per size.
    pub history: Vec<u64>,
    /// Timed turns per history size.
    pub turns: u64,
    /// Untimed turns before timing starts.
    pub warmup: u64,
    /// Bytes of each benchmark message.
    pub message_bytes: usize,
    /// Concurrent clients, each with its own session.
    pub clients: usize,
    /// Leave the bench sessions in the store.
    pub keep: bool,
    /// One JSON object per history size.
    pub json: bool,
}

/// Result of one history size.
#[derive(Debug, Serialize)]
pub(crate) struct MemoryBenchResult {
    /// Store URL (redacted).
    pub store: String,
    /// Messages in the session when timing started.
    pub history: u64,
    /// Timed turns (all clients).
    pub turns: u64,
    /// Concurrent clients.
    pub clients: usize,
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
    /// With an archive: the largest archive lag seen during the run, in seconds
    /// (sampled every 100 ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_lag_max_s: Option<f64>,
    /// With an archive: seconds from the end of the run until the archive held every
    /// message (at most 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_drain_s: Option<f64>,
}

/// Samples the archive's lag while the run lasts; returns the largest.
async fn watch_lag(
    store: std::sync::Arc<dyn ragchat_memory::SessionStore>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> f64 {
    let mut worst = 0.0f64;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        if let Some(status) = store.archive_status() {
            worst = worst.max(status.lag_seconds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worst
}

/// Seconds until the archive has caught up (`None` without an archive).
async fn drain_time(store: &dyn ragchat_memory::SessionStore) -> Option<f64> {
    store.archive_status()?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if store.archive_status().is_some_and(|s| s.lag_messages == 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Some(started.elapsed().as_secs_f64())
}

/// Runs `bench memory`.
pub(crate) async fn run(global: &GlobalArgs, options: MemoryBench) -> Result<ExitCode> {
    let MemoryBench {
        history,
        turns,
        warmup,
        message_bytes,
        clients,
        keep,
        json,
    } = options;
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
        let (r, keys) = bench_memory(&manager, n, turns, warmup, message_bytes, clients).await?;
        if !keep {
            forget(&manager, &keys).await?;
        }
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
        for r in &results {
            if let (Some(lag), Some(drain)) = (r.archive_lag_max_s, r.archive_drain_s) {
                println!(
                    "archive ({} messages of history): lag at most {lag:.2} s during the run, \
                     caught up {drain:.2} s after it",
                    r.history
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Deletes the bench sessions. In degraded mode the store cannot delete, so their
/// journaled messages are dropped instead of replaying benchmark data into the store later.
async fn forget(manager: &SessionManager, keys: &[SessionKey]) -> Result<()> {
    for key in keys {
        if let Err(e) = manager.delete(key).await {
            match manager.journal() {
                Some(journal) => {
                    journal.remove_session(key).await?;
                }
                None => return Err(e.into()),
            }
        }
    }
    Ok(())
}

fn text(bytes: usize, i: u64) -> String {
    let mut s = format!("message {i}: ");
    while s.len() < bytes {
        s.push_str("lorem ipsum dolor sit amet ");
    }
    s.truncate(bytes);
    s
}

/// Latency histograms (nanoseconds) of the timed turns.
struct Latencies {
    total: Histogram<u64>,
    reads: Histogram<u64>,
    appends: Histogram<u64>,
}

impl Latencies {
    fn new() -> Result<Self> {
        Ok(Latencies {
            total: Histogram::new(3)?,
            reads: Histogram::new(3)?,
            appends: Histogram::new(3)?,
        })
    }

    /// Adds one client's turns, each its read and its append time.
    fn add(&mut self, turns: &[(Duration, Duration)]) -> Result<()> {
        for &(read, append) in turns {
            self.total.record(nanos(read + append))?;
            self.reads.record(nanos(read))?;
            self.appends.record(nanos(append))?;
        }
        Ok(())
    }
}

/// One session filled with `history` messages.
pub(crate) async fn prefill(
    manager: &SessionManager,
    history: u64,
    message_bytes: usize,
) -> Result<SessionKey> {
    let key = SessionKey::new("bench", format!("bench-{}", Message::user("x").id))?;
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
    Ok(key)
}

/// One turn: read the history, append a question and an answer.
async fn turn(
    manager: &SessionManager,
    key: &SessionKey,
    i: u64,
    message_bytes: usize,
) -> Result<(usize, Duration, Duration)> {
    let t0 = Instant::now();
    let h = manager.history(key).await?;
    let n = h.len();
    drop(h);
    let t1 = Instant::now();
    manager
        .append(
            key,
            vec![
                Message::user(text(message_bytes, i)),
                Message::assistant(text(message_bytes, i + 1)),
            ],
        )
        .await?;
    Ok((n, t1 - t0, t1.elapsed()))
}

/// One client: warm-up turns, then (after every client is warm) `turns` timed turns, each
/// its read and its append time. The times go into a vector made before the clock
/// starts: histograms that grew while it ran took fresh memory (and the kernel's time to
/// clear it) from the turns they measured.
async fn client(
    manager: SessionManager,
    key: SessionKey,
    history: u64,
    turns: u64,
    warmup: u64,
    message_bytes: usize,
    start: std::sync::Arc<tokio::sync::Barrier>,
) -> Result<Vec<(Duration, Duration)>> {
    for i in 0..warmup {
        turn(&manager, &key, i, message_bytes).await?;
    }
    let mut times = Vec::with_capacity(usize::try_from(turns)?);
    times.resize(times.capacity(), (Duration::ZERO, Duration::ZERO));
    start.wait().await;
    for (i, time) in (0..turns).zip(times.iter_mut()) {
        let (n, read, append) = turn(&manager, &key, i, message_bytes).await?;
        if n == 0 && history > 0 {
            bail!("the session lost its history during the benchmark");
        }
        *time = (read, append);
    }
    Ok(times)
}

async fn bench_memory(
    manager: &SessionManager,
    history: u64,
    turns: u64,
    warmup: u64,
    message_bytes: usize,
    clients: usize,
) -> Result<(MemoryBenchResult, Vec<SessionKey>)> {
    let clients = clients.max(1);
    let mut keys = Vec::with_capacity(clients);
    for _ in 0..clients {
        keys.push(prefill(manager, history, message_bytes).await?);
    }
    let per_client = turns.div_ceil(clients as u64).max(1);
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    let tasks: Vec<_> = keys
        .iter()
        .map(|key| {
            tokio::spawn(client(
                manager.clone(),
                key.clone(),
                history,
                per_client,
                warmup.div_ceil(clients as u64),
                message_bytes,
                start.clone(),
            ))
        })
        .collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lag = manager
        .store()
        .archive_status()
        .map(|_| tokio::spawn(watch_lag(manager.store().clone(), done.clone())));
    start.wait().await;
    let started = Instant::now();
    let mut all = Latencies::new()?;
    let mut times = Vec::with_capacity(tasks.len());
    for task in tasks {
        times.push(task.await??);
    }
    let elapsed = started.elapsed();
    for client in &times {
        all.add(client)?;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let archive_lag_max_s = match lag {
        Some(task) => Some(task.await?),
        None => None,
    };
    let archive_drain_s = drain_time(manager.store().as_ref()).await;
    let timed = per_client * clients as u64;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    let result = MemoryBenchResult {
        store: manager.store_url(),
        history,
        turns: timed,
        clients,
        turns_per_s: timed as f64 / elapsed.as_secs_f64(),
        p50_ms: ms(&all.total, 0.5),
        p99_ms: ms(&all.total, 0.99),
        p999_ms: ms(&all.total, 0.999),
        max_ms: all.total.max() as f64 / 1e6,
        read_p50_ms: ms(&all.reads, 0.5),
        append_p50_ms: ms(&all.appends, 0.5),
        archive_lag_max_s,
        archive_drain_s,
    };
    Ok((result, keys))
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}
