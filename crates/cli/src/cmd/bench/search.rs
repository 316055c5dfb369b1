//! `ragchat bench search`: search latency for one user among many. The store is filled
//! with `--users` users of `--messages-per-user` messages each, pseudo-English: word
//! frequencies fall off like natural text's (Zipf: rank r with weight 1/r), the 100
//! most frequent words are English function words ("the", "of", ...: what search
//! drops, as in real text), the rest made-up content words (the most common of them
//! in about 4% of messages). Then the first user's messages are searched `--queries`
//! times, one query at a time, each of two content words: one drawn by frequency
//! (often common, matching thousands of the user's messages) and one uniformly (rare).
//!
//! Filling writes through the store's own append (batches of 500); `--reuse` skips it
//! when a previous run with the same flags left the messages there.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::{Message, SearchQuery, SessionKey, SessionStore};
use serde::Serialize;

use super::words::{Lcg, Vocabulary};

use crate::config::GlobalArgs;
use crate::output;

/// Messages per append while filling.
const BATCH: u64 = 500;

/// `bench search`'s flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SearchBenchArgs {
    /// Users in the store (`bench-search-0` is the one searched).
    #[arg(long, default_value_t = 10)]
    pub users: u64,
    /// Messages of each user.
    #[arg(long, default_value_t = 100_000)]
    pub messages_per_user: u64,
    /// Messages per conversation.
    #[arg(long, default_value_t = 1000)]
    pub session_messages: u64,
    /// Timed searches.
    #[arg(long, default_value_t = 2000)]
    pub queries: u64,
    /// Untimed searches before timing.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
    /// Hits asked of each search.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Conversations written at once while filling.
    #[arg(long, default_value_t = 4)]
    pub fill_clients: usize,
    /// Keep the messages a previous run with the same flags wrote (skip filling when
    /// they are there).
    #[arg(long)]
    pub reuse: bool,
    /// Then chat as the searched user this many turns with recall across their
    /// conversations and as many without, and print what recall adds to a turn.
    #[arg(long, default_value_t = 0)]
    pub turns: u64,
    /// One JSON object: {"store","users","messages","queries","p50_ms","p99_ms","max_ms","mean_hits","fill_s"}
    /// (and "recall": {...} with --turns).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct SearchBenchResult {
    store: String,
    users: u64,
    messages: u64,
    user_messages: u64,
    queries: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_hits: f64,
    fill_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<super::recall::RecallCost>,
}

fn user(i: u64) -> String {
    format!("bench-search-{i}")
}

/// Writes one conversation of `n` messages.
async fn fill_session(
    store: &dyn SessionStore,
    vocabulary: &Vocabulary,
    key: &SessionKey,
    n: u64,
    seed: u64,
) -> Result<()> {
    let opts = AppendOptions::KEEP_ALL;
    let mut rng = Lcg(seed);
    let mut written = 0;
    while written < n {
        let batch: Vec<Message> = (written..n.min(written + BATCH))
            .map(|i| {
                let text = vocabulary.message(&mut rng);
                if i % 2 == 0 {
                    Message::user(text)
                } else {
                    Message::assistant(text)
                }
            })
            .collect();
        written += batch.len() as u64;
        store.append(key, &batch, opts).await?;
    }
    Ok(())
}

/// Runs `bench search`.
pub(crate) async fn run(global: &GlobalArgs, args: SearchBenchArgs) -> Result<ExitCode> {
    if args.users == 0 || args.messages_per_user == 0 || args.session_messages == 0 {
        bail!(ragchat_memory::MemoryError::InvalidInput(
            "--users, --messages-per-user and --session-messages must be at least 1".into()
        ));
    }
    let manager = global.open_manager().await?;
    let store = manager.store().clone();
    let vocabulary = Vocabulary::new();
    let sessions_per_user = args.messages_per_user.div_ceil(args.session_messages);
    let last = SessionKey::new(user(args.users - 1), format!("s{}", sessions_per_user - 1))?;
    let filled = match store.meta(&last).await? {
        Some(meta) if args.reuse => meta.message_count > 0,
        _ => false,
    };
    let started = Instant::now();
    if !filled {
        if !args.json {
            eprintln!(
                "bench: writing {} users x {} messages ...",
                args.users, args.messages_per_user
            );
        }
        let jobs: Vec<(SessionKey, u64, u64)> = (0..args.users)
            .flat_map(|u| (0..sessions_per_user).map(move |s| (u, s)))
            .map(|(u, s)| {
                let n = args
                    .session_messages
                    .min(args.messages_per_user - s * args.session_messages);
                let key = SessionKey::new(user(u), format!("s{s}")).expect("valid ids");
                (key, n, u * 1_000_003 + s)
            })
            .collect();
        let results: Vec<Result<()>> = futures::stream::iter(jobs)
            .map(|(key, n, seed)| {
                let (store, vocabulary) = (store.clone(), &vocabulary);
                async move {
                    // A conversation an interrupted run left half-written starts over.
                    if store.meta(&key).await?.is_some() {
                        store.delete(&key).await?;
                    }
                    fill_session(store.as_ref(), vocabulary, &key, n, seed).await
                }
            })
            .buffer_unordered(args.fill_clients.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<()>>()?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let searched = user(0);
    let mut rng = Lcg(99);
    let mut hist = Histogram::<u64>::new(3)?;
    let mut hits = 0usize;
    for i in 0..args.warmup + args.queries {
        let text = format!(
            "{} {}",
            vocabulary.frequent_content(&mut rng),
            vocabulary.rare(&mut rng)
        );
        let mut query = SearchQuery::new(text);
        query.limit = args.limit;
        let t = Instant::now();
        let page = manager.search(&searched, &query).await?;
        let took = t.elapsed();
        if i >= args.warmup {
            hist.record(took.as_nanos().min(u64::MAX as u128) as u64)?;
            hits += page.hits.len();
        }
    }
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1e6;
    let recall = if args.turns > 0 {
        if !args.json {
            eprintln!(
                "bench: {} chat turns with recall and as many without ...",
                args.turns
            );
        }
        let warmup = (args.turns / 10).max(5);
        Some(
            super::recall::measure(global, &manager, &vocabulary, &searched, args.turns, warmup)
                .await?,
        )
    } else {
        None
    };
    let result = SearchBenchResult {
        store: manager.store_url(),
        users: args.users,
        messages: args.users * args.messages_per_user,
        user_messages: args.messages_per_user,
        queries: args.queries,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: hist.max() as f64 / 1e6,
        mean_hits: hits as f64 / args.queries.max(1) as f64,
        fill_s,
        recall,
    };
    if args.json {
        output::json_line(&result)?;
    } else {
        println!(
            "store: {}\nsearch of one user's {} messages among {} ({} queries of two words, \
             {} hits asked): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.1} hits per query",
            result.store,
            result.user_messages,
            result.messages,
            result.queries,
            args.limit,
            result.p50_ms,
            result.p99_ms,
            result.max_ms,
            result.mean_hits
        );
        if let Some(r) = &result.recall {
            println!(
                "recall in a chat turn ({} turns each way, {:.1} messages recalled per turn): \
                 recall p50 {:.2} ms, p99 {:.2} ms; turn with recall p50 {:.2} ms, p99 {:.2} ms; \
                 without p50 {:.2} ms, p99 {:.2} ms; storing the turn p50 {:.2} ms with recall, \
                 {:.2} ms without",
                r.turns,
                r.mean_recalled,
                r.recall_p50_ms,
                r.recall_p99_ms,
                r.turn_p50_ms,
                r.turn_p99_ms,
                r.plain_turn_p50_ms,
                r.plain_turn_p99_ms,
                r.write_p50_ms,
                r.plain_write_p50_ms
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
