//! `ragchat bench http`: load running `ragchat serve` processes over HTTP.
//!
//! Each of `--concurrency` clients holds its own conversations (a new one every
//! `--turns-per-chat` turns) and posts questions in a loop until `--duration` is over;
//! with several `--url`s a client sends each turn to the next server, so every
//! conversation moves between servers all the time. `--protocol` picks ragchat's own
//! route, OpenAI's chat-completions protocol (the whole conversation resent each turn), or
//! `both`: the run alternates them in `2 x --rounds` equal slices (native, chat-completions,
//! then chat-completions, native, and so on, so neither always goes first) and reports the
//! chat-completions overhead over the native route as measured in that one run. Reports
//! turns/s, latency percentiles and errors, and, from the servers' `/metrics` before and
//! after each slice, where the server-side time of a turn went (memory, retrieval,
//! answer).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::load::{run_slice, LoadConfig, Protocol};
use crate::config::GlobalArgs;
use crate::output;

/// Phases of a turn as the server's `ragchat_turn_phase_seconds` names them.
const PHASES: [&str; 4] = ["memory_read", "retrieval", "answer", "memory_write"];

/// Turns per conversation when chat-completions clients are part of the run.
const DEFAULT_TURNS_PER_CHAT: u64 = 10;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which protocol(s) `bench http` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProtocolChoice {
    /// ragchat's own `POST /v1/sessions/{session}/messages`.
    Native,
    /// OpenAI's `POST /v1/chat/completions`, the whole conversation resent each turn.
    ChatCompletions,
    /// Both, alternating in slices of one run, with the overhead of chat-completions.
    Both,
}

/// `ragchat bench http` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct HttpBenchArgs {
    /// Base URL of a running `ragchat serve`; repeat or comma-separate to spread every
    /// conversation over several servers.
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// Concurrent clients, each with its own conversations.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds to run (in all, over every slice).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub duration: u64,
    /// The protocol the clients speak.
    #[arg(long, value_enum, default_value = "native")]
    pub protocol: ProtocolChoice,
    /// With `--protocol both`: slices per protocol (the run alternates 2 x ROUNDS slices).
    #[arg(long, value_name = "ROUNDS", default_value_t = 3)]
    pub rounds: usize,
    /// Turns after which a client starts a new conversation [default: 10 with
    /// chat-completions or both, so resent conversations stay as long as real ones; ragchat's
    /// own route alone keeps one conversation per client].
    #[arg(long, value_name = "N")]
    pub turns_per_chat: Option<u64>,
    /// API key, when the servers run with --api-keys.
    #[arg(long, env = "RAGCHAT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// One JSON object: {"protocol","url","concurrency","duration_s","turns","turns_per_s","p50_ms","p99_ms","errors",...};
    /// with `--protocol both`: {"native":{...},"chat_completions":{...},"p50_ratio","throughput_ratio",...}.
    #[arg(long)]
    pub json: bool,
}

/// The result of a run (or of one protocol's slices).
#[derive(Debug, Serialize)]
pub(crate) struct HttpBenchResult {
    /// `native` or `chat-completions`.
    pub protocol: String,
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

/// `--protocol both`: the two protocols measured in alternating slices of one run.
#[derive(Debug, Serialize)]
pub(crate) struct HttpCompareResult {
    /// Slices per protocol.
    pub rounds: usize,
    /// Seconds of each slice.
    pub slice_s: f64,
    /// ragchat's own route.
    pub native: HttpBenchResult,
    /// The chat-completions protocol.
    pub chat_completions: HttpBenchResult,
    /// Median latency of chat-completions over native (1.05 = 5% slower).
    pub p50_ratio: f64,
    /// 99th-percentile latency of chat-completions over native.
    pub p99_ratio: f64,
    /// Turns/s of chat-completions over native (0.95 = 5% fewer).
    pub throughput_ratio: f64,
}

/// What a protocol's slices add up to.
struct Totals {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    elapsed: f64,
    /// `(seconds, turns)` per phase, summed over the slices; `None` once a scrape failed.
    phases: Option<BTreeMap<String, (f64, f64)>>,
}

/// Runs the load.
///
/// # Errors
/// Invalid options, or when not a single turn succeeded.
pub(crate) async fn run(_global: &GlobalArgs, args: HttpBenchArgs) -> Result<ExitCode> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    if args.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let turns_per_chat = match (args.turns_per_chat, args.protocol) {
        (Some(0), _) => bail!("--turns-per-chat must be at least 1"),
        (Some(n), _) => n,
        (None, ProtocolChoice::Native) => u64::MAX,
        (None, _) => DEFAULT_TURNS_PER_CHAT,
    };
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
    let load = LoadConfig {
        urls: urls.clone(),
        api_key: args.api_key.clone(),
        concurrency: args.concurrency,
        turns_per_chat,
        run_id: format!(
            "{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_millis()
        ),
    };
    let plan = slice_plan(args.protocol, args.rounds);
    let slice_duration =
        Duration::from_secs_f64((args.duration as f64 / plan.len() as f64).max(1.0));
    if !args.json {
        eprintln!(
            "bench http: {} clients for {} s against {} ({} slice(s) of {:.1} s: {})",
            args.concurrency,
            args.duration,
            urls.join(", "),
            plan.len(),
            slice_duration.as_secs_f64(),
            plan.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
        );
    }

    let mut totals: BTreeMap<Protocol, Totals> = BTreeMap::new();
    for (i, protocol) in plan.iter().enumerate() {
        let before = scrape_phases(&client, &urls).await;
        let slice = run_slice(&client, &load, *protocol, slice_duration, i).await?;
        let after = scrape_phases(&client, &urls).await;
        let total = match totals.entry(*protocol) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(Totals {
                latencies: Histogram::new(3)?,
                errors: 0,
                first_error: None,
                elapsed: 0.0,
                phases: Some(BTreeMap::new()),
            }),
        };
        total.latencies.add(&slice.latencies)?;
        total.errors += slice.errors;
        if total.first_error.is_none() {
            total.first_error = slice.first_error;
        }
        total.elapsed += slice.elapsed.as_secs_f64();
        total.phases = match (total.phases.take(), phase_delta(before, after)) {
            (Some(mut sums), Some(delta)) => {
                for (phase, (secs, turns)) in delta {
                    let entry = sums.entry(phase).or_default();
                    entry.0 += secs;
                    entry.1 += turns;
                }
                Some(sums)
            }
            _ => None,
        };
    }

    let mut results: BTreeMap<Protocol, HttpBenchResult> = totals
        .into_iter()
        .map(|(protocol, total)| (protocol, result(protocol, &urls, args.concurrency, total)))
        .collect();
    let answered: u64 = results.values().map(|r| r.turns).sum();
    let errors: Vec<String> = results
        .values()
        .filter_map(|r| r.first_error.clone())
        .collect();
    let native = results.remove(&Protocol::Native);
    let chat = results.remove(&Protocol::ChatCompletions);
    match (native, chat) {
        (Some(native), Some(chat_completions)) => {
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
            let compare = HttpCompareResult {
                rounds: args.rounds,
                slice_s: slice_duration.as_secs_f64(),
                p50_ratio: ratio(chat_completions.p50_ms, native.p50_ms),
                p99_ratio: ratio(chat_completions.p99_ms, native.p99_ms),
                throughput_ratio: ratio(chat_completions.turns_per_s, native.turns_per_s),
                native,
                chat_completions,
            };
            if args.json {
                output::json_line(&compare)?;
            } else {
                print_human(&compare.native);
                print_human(&compare.chat_completions);
                println!(
                    "overhead   chat-completions / native: p50 x{:.3}, p99 x{:.3}, turns/s x{:.3}",
                    compare.p50_ratio, compare.p99_ratio, compare.throughput_ratio
                );
            }
        }
        (Some(one), None) | (None, Some(one)) => {
            if args.json {
                output::json_line(&one)?;
            } else {
                print_human(&one);
            }
        }
        (None, None) => {}
    }
    if answered == 0 {
        bail!(
            "no turn succeeded (first error: {})",
            errors.first().map_or("none", String::as_str)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The protocols of the slices, in order: `both` alternates native and chat-completions,
/// swapping which goes first every round.
fn slice_plan(choice: ProtocolChoice, rounds: usize) -> Vec<Protocol> {
    match choice {
        ProtocolChoice::Native => vec![Protocol::Native],
        ProtocolChoice::ChatCompletions => vec![Protocol::ChatCompletions],
        ProtocolChoice::Both => (0..rounds)
            .flat_map(|round| {
                if round % 2 == 0 {
                    [Protocol::Native, Protocol::ChatCompletions]
                } else {
                    [Protocol::ChatCompletions, Protocol::Native]
                }
            })
            .collect(),
    }
}

fn result(
    protocol: Protocol,
    urls: &[String],
    concurrency: usize,
    total: Totals,
) -> HttpBenchResult {
    let turns = total.latencies.len();
    let ms = |q: f64| total.latencies.value_at_quantile(q) as f64 / 1000.0;
    let (phase_ms, phase_share) = phase_breakdown(total.phases);
    HttpBenchResult {
        protocol: protocol.name().to_string(),
        url: urls.join(","),
        concurrency,
        duration_s: total.elapsed,
        turns,
        turns_per_s: turns as f64 / total.elapsed.max(f64::EPSILON),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: total.latencies.max() as f64 / 1000.0,
        errors: total.errors,
        first_error: total.first_error,
        phase_ms,
        phase_share,
    }
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

/// `(seconds, turns)` per phase between two scrapes; `None` when either failed.
fn phase_delta(
    before: Option<BTreeMap<String, (f64, f64)>>,
    after: Option<BTreeMap<String, (f64, f64)>>,
) -> Option<BTreeMap<String, (f64, f64)>> {
    let (before, after) = (before?, after?);
    let mut delta = BTreeMap::new();
    for phase in PHASES {
        let (s0, c0) = before.get(phase).copied().unwrap_or_default();
        let Some(&(s1, c1)) = after.get(phase) else {
            continue;
        };
        delta.insert(phase.to_string(), (s1 - s0, c1 - c0));
    }
    Some(delta)
}

/// Mean milliseconds per turn and share of each phase, from summed deltas.
fn phase_breakdown(
    sums: Option<BTreeMap<String, (f64, f64)>>,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let Some(sums) = sums else {
        return Default::default();
    };
    let mut mean_ms = BTreeMap::new();
    for (phase, (secs, turns)) in sums {
        if turns > 0.0 {
            mean_ms.insert(phase, secs / turns * 1000.0);
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
    println!("protocol   {}", r.protocol);
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
        let delta = phase_delta(Some(BTreeMap::new()), Some(after));
        let (ms, share) = phase_breakdown(delta);
        assert!((ms["answer"] - 100.0).abs() < 1e-9);
        assert!((share["answer"] - 0.75).abs() < 1e-9);
        assert!((share["retrieval"] - 0.25).abs() < 1e-9);
        assert_eq!(
            phase_breakdown(phase_delta(None, Some(BTreeMap::new())))
                .0
                .len(),
            0
        );
    }

    #[test]
    fn both_protocols_alternate_which_goes_first() {
        use Protocol::{ChatCompletions as C, Native as N};
        assert_eq!(slice_plan(ProtocolChoice::Both, 3), [N, C, C, N, N, C]);
        assert_eq!(slice_plan(ProtocolChoice::Native, 3), [N]);
        assert_eq!(slice_plan(ProtocolChoice::ChatCompletions, 3), [C]);
    }
}
