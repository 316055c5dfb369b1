//! `ragchat bench search --turns N`: what recall adds to a chat turn. After timing the
//! searches, the searched user chats: `N` turns in a new conversation of theirs, each
//! asking back about two words of their messages ("What did I ask about X Y?"), recall
//! across all their conversations, every other turn with recall off. Printed: the recall
//! phase of the recalling turns (p50, p99) and the whole turn with recall and without
//! (p50, p99), the bundled documents and the offline answerer answering.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use hdrhistogram::Histogram;
use ragchat_engine::{ChatEngine, EngineConfig, RecallConfig};
use ragchat_memory::{SessionKey, SessionManager};
use ragchat_rag::{CorpusSource, ExtractiveAnswerer};
use serde::Serialize;

use super::words::{Lcg, Vocabulary};
use crate::config::GlobalArgs;
use crate::engine_setup::open_index;

/// What recall costs a turn, in milliseconds.
#[derive(Debug, Serialize)]
pub(super) struct RecallCost {
    /// Timed turns with recall (as many again without).
    pub turns: u64,
    /// The recall phase of a turn (a search of the user's messages, taken whole).
    pub recall_p50_ms: f64,
    pub recall_p99_ms: f64,
    /// The whole turn with recall.
    pub turn_p50_ms: f64,
    pub turn_p99_ms: f64,
    /// The whole turn without it.
    pub plain_turn_p50_ms: f64,
    pub plain_turn_p99_ms: f64,
    /// Storing the question and the answer, with recall and without (an answer that
    /// quotes what it recalled is longer to store and index).
    pub write_p50_ms: f64,
    pub plain_write_p50_ms: f64,
    /// Messages recalled per turn, on average.
    pub mean_recalled: f64,
}

/// Runs `turns` timed turns (after `warmup`) as `user`, alternating recall on and off.
pub(super) async fn measure(
    global: &GlobalArgs,
    manager: &SessionManager,
    vocabulary: &Vocabulary,
    user: &str,
    turns: u64,
    warmup: u64,
) -> Result<RecallCost> {
    let index = {
        let global = global.clone();
        tokio::task::spawn_blocking(move || open_index(&global, &CorpusSource::Bundled, false))
            .await??
            .0
    };
    let answerer = Arc::new(ExtractiveAnswerer::for_index(&index));
    let engine = |recall: RecallConfig| {
        ChatEngine::new(
            manager.clone(),
            index.clone(),
            answerer.clone(),
            EngineConfig {
                recall,
                ..EngineConfig::default()
            },
        )
    };
    let recalling = engine(RecallConfig {
        across: true,
        ..RecallConfig::default()
    });
    let plain = engine(RecallConfig::off());
    let key = SessionKey::new(user, "bench-recall")?;
    manager.delete(&key).await?;
    let mut rng = Lcg(2026);
    let histogram = || Histogram::<u64>::new(3);
    let (mut recall, mut with, mut without) = (histogram()?, histogram()?, histogram()?);
    let (mut write, mut plain_write) = (histogram()?, histogram()?);
    let mut recalled = 0usize;
    for i in 0..2 * (warmup + turns) {
        let question = format!(
            "What did I ask about {} {}?",
            vocabulary.frequent_content(&mut rng),
            vocabulary.rare(&mut rng)
        );
        let on = i % 2 == 0;
        let started = Instant::now();
        let outcome = if on { &recalling } else { &plain }
            .turn(&key, &question, &mut |_| {})
            .await?;
        let took = started.elapsed().as_nanos() as u64;
        if i < 2 * warmup {
            continue;
        }
        if on {
            with.record(took)?;
            recall.record(outcome.timings.recall.as_nanos() as u64)?;
            write.record(outcome.timings.memory_write.as_nanos() as u64)?;
            recalled += outcome.recalled.len();
        } else {
            without.record(took)?;
            plain_write.record(outcome.timings.memory_write.as_nanos() as u64)?;
        }
    }
    manager.delete(&key).await?;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e6;
    Ok(RecallCost {
        turns,
        recall_p50_ms: ms(&recall, 0.5),
        recall_p99_ms: ms(&recall, 0.99),
        turn_p50_ms: ms(&with, 0.5),
        turn_p99_ms: ms(&with, 0.99),
        plain_turn_p50_ms: ms(&without, 0.5),
        plain_turn_p99_ms: ms(&without, 0.99),
        write_p50_ms: ms(&write, 0.5),
        plain_write_p50_ms: ms(&plain_write, 0.5),
        mean_recalled: recalled as f64 / turns.max(1) as f64,
    })
}
