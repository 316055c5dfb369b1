//! `ragchat bench http`: load running `ragchat serve` processes over HTTP.
//!
//! Each of `--concurrency` clients has its own session and posts questions in a loop
//! until `--duration` is over; with several `--url`s a client sends each turn to the
//! next server, so every conversation moves between servers all the time. Reports
//! turns/s, latency percentiles and errors, and, from the servers' `/metrics` before
//! and after, where the server-side time of a turn went (memory, retrieval, answer).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::output;

/// Questions the clients cycle through (answerable from the bundled corpus).
const QUESTIONS: &[&str] = &[
    "What is machine learning?",
    "How does it learn?",
    "What is overfitting and how do I avoid it?",
    "Explain gradient descent.",
    "What about neural networks?",
    "How do transformers use attention?",
    "When should I use a random forest?",
    "What is cross-validation for?",
];

/// Phases of a turn as the server's `ragchat_turn_phase_seconds` names them.
const PHASES: [&str; 4] = ["memory_read", "retrieval", "answer", "memory_write"];

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `ragchat bench http` options.
#[derive(Debug, Clone, Args)]
pub struct HttpBenchArgs {
    /// Base URL of a running `ragchat serve`; repeat or comma-separate to spread every
    /// conversation over several servers.
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// Concurrent clients, each with its own session.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// API key, when the servers run with --api-keys.
    #[arg(long, env = "RAGCHAT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// One JSON object: {"url","concurrency","duration_s","turns","turns_per_s","p50_ms","p99_ms","errors",...}.
    #[arg(long)]
    pub json: bool,
}

/// The result of a run.
#[derive(Debug, Serialize)]
pub struct HttpBenchResult {
    /// The server URL(s), comma-separated.
    pub url: String,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Seconds the clients ran.
    pub duration_s: f64,
    /// Turns answered with 200.
    pub turns: u64,
    /// Answered turns per second, all clients together.
    pub turns_per_s: f64,
    /// Median latency of answered turns, client side.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest answered turn.
    pub max_ms: f64,
    /// Requests that failed (non-200, timeout, connection error).
    pub errors: u64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
    /// Server-side mean time per turn in each phase (ms), from `/metrics`; empty when
    /// the servers' metrics could not be read.
    pub phase_ms: BTreeMap<String, f64>,
    /// Each phase's share of the server-side turn time.
    pub phase_share: BTreeMap<String, f64>,
}

/// What one client measured.
struct ClientRun {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the load.
///
/// # Errors
/// Invalid options, or when not a single turn succeeded.
pub async fn run(_global: &GlobalArgs, args: HttpBenchArgs) -> Result<ExitCode> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    let urls: Vec<String> = args
        .url
        .iter()
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        bail!("--url needs at least one server URL");
    }
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .context("cannot build the HTTP client")?;
    if !args.json {
        eprintln!(
            "bench http: {} clients for {} s against {}",
            args.concurrency,
            args.duration,
            urls.join(", ")
        );
    }

    let before = scrape_phases(&client, &urls).await;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut tasks = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        let client = client.clone();
        let urls = urls.clone();
        let key = args.api_key.clone();
        let session = format!("bench-{run_id}-{i}");
        tasks.push(tokio::spawn(async move {
            run_client(client, urls, key, session, i, deadline).await
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let run = task.await.context("a client task failed")??;
        latencies.add(&run.latencies)?;
        errors += run.errors;
        if first_error.is_none() {
            first_error = run.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = scrape_phases(&client, &urls).await;

    let turns = latencies.len();
    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    let (phase_ms, phase_share) = phase_breakdown(before, after);
    let result = HttpBenchResult {
        url: urls.join(","),
        concurrency: args.concurrency,
        duration_s: elapsed,
        turns,
        turns_per_s: turns as f64 / elapsed.max(f64::EPSILON),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: latencies.max() as f64 / 1000.0,
        errors,
        first_error,
        phase_ms,
        phase_share,
    };
    if args.json {
        output::json_line(&result)?;
    } else {
        print_human(&result);
    }
    if turns == 0 {
        bail!(
            "no turn succeeded ({} errors; first: {})",
            result.errors,
            result.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_client(
    client: reqwest::Client,
    urls: Vec<String>,
    api_key: Option<String>,
    session: String,
    index: usize,
    deadline: Instant,
) -> Result<ClientRun> {
    let mut run = ClientRun {
        latencies: Histogram::new(3)?,
        errors: 0,
        first_error: None,
    };
    let mut n = 0usize;
    while Instant::now() < deadline {
        let url = &urls[(index + n) % urls.len()];
        let question = QUESTIONS[(index + n) % QUESTIONS.len()];
        n += 1;
        let mut request = client
            .post(format!("{url}/v1/sessions/{session}/messages"))
            .json(&serde_json::json!({ "content": question }));
        if let Some(key) = &api_key {
            request = request.bearer_auth(key);
        }
        let sent = Instant::now();
        let outcome = match request.send().await {
            Ok(response) if response.status().is_success() => response
                .bytes()
                .await
                .map(|_| ())
                .map_err(|e| format!("reading the answer: {e}")),
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                Err(format!("HTTP {status}: {}", body.trim()))
            }
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                let micros = sent.elapsed().as_micros().max(1) as u64;
                run.latencies.record(micros)?;
            }
            Err(e) => {
                run.errors += 1;
                run.first_error.get_or_insert(e);
            }
        }
    }
    Ok(run)
}

/// Sums of `ragchat_turn_phase_seconds` (seconds, count) per phase over all servers;
/// `None` when any server's metrics cannot be read.
async fn scrape_phases(
    client: &reqwest::Client,
    urls: &[String],
) -> Option<BTreeMap<String, (f64, f64)>> {
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for url in urls {
        let text = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .text()
            .await
            .ok()?;
        for (phase, (sum, count)) in parse_phases(&text) {
            let entry = totals.entry(phase).or_default();
            entry.0 += sum;
            entry.1 += count;
        }
    }
    Some(totals)
}

/// `(sum, count)` of `ragchat_turn_phase_seconds` by phase, from Prometheus text.
fn parse_phases(text: &str) -> BTreeMap<String, (f64, f64)> {
    let mut phases: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (is_sum, rest) =
            if let Some(rest) = series.strip_prefix("ragchat_turn_phase_seconds_sum") {
                (true, rest)
            } else if let Some(rest) = series.strip_prefix("ragchat_turn_phase_seconds_count") {
                (false, rest)
            } else {
                continue;
            };
        let Some(phase) = rest
            .strip_prefix("{phase=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        else {
            continue;
        };
        let entry = phases.entry(phase.to_string()).or_default();
        if is_sum {
            entry.0 = value;
        } else {
            entry.1 = value;
        }
    }
    phases
}

/// Mean milliseconds per turn and share of each phase, from two scrapes.
fn phase_breakdown(
    before: Option<BTreeMap<String, (f64, f64)>>,
    after: Option<BTreeMap<String, (f64, f64)>>,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let (Some(before), Some(after)) = (before, after) else {
        return Default::default();
    };
    let mut mean_ms = BTreeMap::new();
    for phase in PHASES {
        let (s0, c0) = before.get(phase).copied().unwrap_or_default();
        let Some(&(s1, c1)) = after.get(phase) else {
            continue;
        };
        let turns = c1 - c0;
        if turns > 0.0 {
            mean_ms.insert(phase.to_string(), (s1 - s0) / turns * 1000.0);
        }
    }
    let total: f64 = mean_ms.values().sum();
    let share = mean_ms
        .iter()
        .map(|(p, ms)| (p.clone(), if total > 0.0 { ms / total } else { 0.0 }))
        .collect();
    (mean_ms, share)
}

fn print_human(r: &HttpBenchResult) {
    println!(
        "turns      {} in {:.1} s: {:.1} turns/s ({} clients)",
        r.turns, r.duration_s, r.turns_per_s, r.concurrency
    );
    println!(
        "latency    p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        r.p50_ms, r.p99_ms, r.max_ms
    );
    match &r.first_error {
        Some(e) => println!("errors     {} (first: {e})", r.errors),
        None => println!("errors     {}", r.errors),
    }
    if !r.phase_ms.is_empty() {
        let parts: Vec<String> = PHASES
            .iter()
            .filter_map(|p| {
                let ms = r.phase_ms.get(*p)?;
                let share = r.phase_share.get(*p).copied().unwrap_or(0.0);
                Some(format!(
                    "{} {ms:.2} ms ({:.0}%)",
                    p.replace('_', " "),
                    share * 100.0
                ))
            })
            .collect();
        println!("server     per turn: {}", parts.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_phase_sums_from_prometheus_text() {
        let text = "# TYPE ragchat_turn_phase_seconds histogram\n\
            ragchat_turn_phase_seconds_bucket{phase=\"answer\",le=\"0.5\"} 3\n\
            ragchat_turn_phase_seconds_sum{phase=\"answer\"} 0.3\n\
            ragchat_turn_phase_seconds_count{phase=\"answer\"} 3\n\
            ragchat_turn_phase_seconds_sum{phase=\"retrieval\"} 0.1\n\
            ragchat_turn_phase_seconds_count{phase=\"retrieval\"} 3\n";
        let after = parse_phases(text);
        assert_eq!(after["answer"], (0.3, 3.0));
        let (ms, share) = phase_breakdown(Some(BTreeMap::new()), Some(after));
        assert!((ms["answer"] - 100.0).abs() < 1e-9);
        assert!((share["answer"] - 0.75).abs() < 1e-9);
        assert!((share["retrieval"] - 0.25).abs() < 1e-9);
    }
}
