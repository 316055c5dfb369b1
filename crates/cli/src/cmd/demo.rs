//! `ragchat demo`: the platform's old failure, replayed for real, then fixed.
//!
//! Each phase runs the same script through real `ragchat chat` child processes:
//! process 1 asks two questions and exits (the "deploy"); process 2 says "Continue our
//! conversation". BEFORE keeps conversations in the app's RAM (`memory://`); AFTER in a
//! durable store. AFTER then plays one more scene ([`away`]): the user stays away longer
//! than a short TTL and comes back; on Redis the conversation has left Redis by then
//! and comes back from the archive. The closing table is built from what the processes
//! reported.

use std::io::Write;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use ragchat_memory::{MessageId, SessionKey};
use serde_json::Value;

use crate::config::GlobalArgs;
use crate::output;

/// `ragchat demo` options (the store is the global `--store` / `--redis`).
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// Keep the demo conversation in the durable store afterwards.
    #[arg(long)]
    pub keep: bool,
}

const FIRST_PROCESS: [&str; 2] = ["What is ML?", "How does it learn?"];
const SECOND_PROCESS: &str = "Continue our conversation";

/// What one phase measured.
#[derive(Debug)]
struct Phase {
    store: String,
    recovered: u64,
    context_restored: bool,
    memory_ms: f64,
}

/// Runs the demo.
pub(crate) async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<ExitCode> {
    let durable = choose_durable_store(global).await;
    let user = format!("demo-{}", &MessageId::new().to_string()[24..]);
    println!("ragchat demo: a conversation across a restart (user {user})\n");

    println!("BEFORE: conversations kept in the app's RAM (memory://), as the old design did");
    let before = phase(global, "memory://", &user)?;
    println!();
    println!("AFTER: conversations persisted in {}", durable.describe);
    let after = phase(global, &durable.url, &user)?;
    println!();
    let away = away(global, &durable, &user).await?;

    if !args.keep && durable.url != "memory://" {
        let cleanup = Command::new(std::env::current_exe()?)
            .args(store_args(global, &durable.url))
            .args(["sessions", "delete", "--user", &user, "--session", "demo"])
            .stdout(Stdio::null())
            .status();
        if !cleanup.is_ok_and(|s| s.success()) {
            eprintln!("note: could not delete the demo conversation of {user}");
        }
        away.clean_up(&user);
    }

    let mut table = output::table(&["", "before", "after"]);
    table.add_row(vec![
        "store".to_string(),
        before.store.clone(),
        after.store.clone(),
    ]);
    table.add_row(vec![
        "messages recovered after the restart".to_string(),
        format!("{} of 4", before.recovered),
        format!("{} of 4", after.recovered),
    ]);
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    table.add_row(vec![
        "context restored".to_string(),
        yes_no(before.context_restored),
        yes_no(after.context_restored),
    ]);
    table.add_row(vec![
        "memory cost per turn (read + append)".to_string(),
        format!("{:.2} ms", before.memory_ms),
        format!("{:.2} ms", after.memory_ms),
    ]);
    table.add_row(vec![
        format!(
            "continues after {} s away (TTL {AWAY_TTL_SECS} s)",
            away.away_secs
        ),
        "no (lost at the restart)".to_string(),
        match away.tier_while_away.as_deref() {
            Some(tier) => format!("{} ({tier} while away)", yes_no(away.continued)),
            None => yes_no(away.continued),
        },
    ]);
    println!("\n{table}");
    let ok = !before.context_restored && after.context_restored && away.continued;
    if ok {
        println!(
            "The conversation survived the restart with {}.",
            after.store
        );
        Ok(ExitCode::SUCCESS)
    } else if before.context_restored {
        println!("Unexpected: the RAM-only store kept the conversation.");
        Ok(ExitCode::FAILURE)
    } else if after.context_restored {
        println!(
            "{} lost the conversation of a user who stayed away longer than the TTL.",
            after.store
        );
        Ok(ExitCode::FAILURE)
    } else {
        println!(
            "{} did not keep the conversation across the restart.",
            after.store
        );
        Ok(ExitCode::FAILURE)
    }
}

struct Durable {
    url: String,
    describe: String,
}

/// The TTL of the [`away`] scene: short, so that the demo stays short.
const AWAY_TTL_SECS: u64 = 2;

/// The session of the [`away`] scene.
const AWAY_SESSION: &str = "demo-away";

/// What the [`away`] scene saw.
struct Away {
    /// The store arguments of its processes (with `--archive` on Redis).
    args: Vec<String>,
    /// How long the user stayed away.
    away_secs: u64,
    /// Where the conversation was meanwhile (`archived`), on Redis with an archive.
    tier_while_away: Option<String>,
    /// Whether the second process continued the whole conversation.
    continued: bool,
    /// An archive file the demo made (deleted afterwards unless `--keep`).
    made_archive: Option<std::path::PathBuf>,
}

impl Away {
    /// Deletes the scene's conversation (both tiers) and the archive file it made.
    fn clean_up(&self, user: &str) {
        let deleted = std::env::current_exe().and_then(|exe| {
            Command::new(exe)
                .args(&self.args)
                .args([
                    "sessions",
                    "delete",
                    "--user",
                    user,
                    "--session",
                    AWAY_SESSION,
                ])
                .stdout(Stdio::null())
                .status()
        });
        if !deleted.is_ok_and(|s| s.success()) {
            eprintln!("note: could not delete the demo conversation {user}/{AWAY_SESSION}");
        }
        if let Some(path) = &self.made_archive {
            for suffix in ["", "-wal", "-shm"] {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }
}

/// The user asks, leaves for longer than a [`AWAY_TTL_SECS`] TTL, comes back and
/// continues. On Redis the store gets an archive behind it (`--archive`, else a
/// demo SQLite file in the data dir): the conversation leaves Redis with the TTL, is
/// listed as `archived`, and comes back on its next use.
async fn away(global: &GlobalArgs, durable: &Durable, user: &str) -> Result<Away> {
    SessionKey::new(user, AWAY_SESSION)?;
    let is_redis = ragchat_memory::parse_store_url(&durable.url)
        .is_ok_and(|s| s.kind() == ragchat_memory::StoreKind::Redis);
    let mut args = vec![
        "--store".to_string(),
        durable.url.clone(),
        "--data-dir".to_string(),
        global.data_dir().display().to_string(),
        "--ttl".to_string(),
        AWAY_TTL_SECS.to_string(),
    ];
    let mut made_archive = None;
    let mut on = durable.describe.clone();
    if is_redis {
        let archive = match &global.archive {
            Some(archive) => archive.clone(),
            None => {
                let path = global.data_dir().join(format!("demo-archive-{user}.db"));
                made_archive = Some(path.clone());
                format!("sqlite://{}", path.display())
            }
        };
        on = format!(
            "{on} with the archive {}",
            ragchat_memory::redact_url(&archive)
        );
        args.extend(["--archive".to_string(), archive]);
    }
    println!("AWAY: the user leaves for longer than the TTL ({AWAY_TTL_SECS} s here), on {on}");
    let question = FIRST_PROCESS[1];
    let first = chat_process(&args, user, AWAY_SESSION, &[question])?;
    show_turn(1, question, &first[1]);
    let left = std::time::Instant::now();
    // Away until the TTL has passed; on Redis, until the conversation has left it.
    let mut tier_while_away = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let past_ttl = left.elapsed() > Duration::from_secs(AWAY_TTL_SECS + 1);
        if is_redis {
            tier_while_away = tier_of(&args, user)?;
        }
        let gone = !is_redis || tier_while_away.as_deref() == Some("archived");
        if (gone && past_ttl) || left.elapsed() > Duration::from_secs(AWAY_TTL_SECS + 10) {
            break;
        }
    }
    let away_secs = left.elapsed().as_secs();
    let kept = tier_while_away
        .as_deref()
        .map(|t| format!("; Redis no longer holds it, it is {t}"))
        .unwrap_or_default();
    println!("  -- the user is away for {away_secs} s, longer than the TTL{kept} --");
    let second = chat_process(&args, user, AWAY_SESSION, &[SECOND_PROCESS])?;
    if let Some(welcome) = second[0]["welcome"].as_str() {
        println!("  [process 2] ragchat: {welcome}");
    }
    let answer = second.get(1).context("process 2 gave no answer")?;
    show_turn(2, SECOND_PROCESS, answer);
    let continued = second[0]["resumed"] == true
        && second[0]["message_count"].as_u64() >= Some(2)
        && !answered_without_history(answer);
    Ok(Away {
        args,
        away_secs,
        tier_while_away,
        continued,
        made_archive,
    })
}

/// The `tier` of the away conversation as `sessions list --json` shows it.
fn tier_of(args: &[String], user: &str) -> Result<Option<String>> {
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .args(["sessions", "list", "--user", user, "--json"])
        .stderr(Stdio::null())
        .output()?;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok(listed["sessions"].as_array().and_then(|sessions| {
        sessions
            .iter()
            .find(|s| s["session"] == AWAY_SESSION)
            .and_then(|s| s["tier"].as_str().map(str::to_string))
    }))
}

/// Whether an answer says there was no earlier conversation.
fn answered_without_history(answer: &Value) -> bool {
    answer["answer"].as_str().unwrap_or_default().starts_with(
        ragchat_rag::NO_CONVERSATION_REPLY
            .split('.')
            .next()
            .unwrap_or("I don't"),
    )
}

/// `--store`/`--redis` if given; else Redis at `RAGCHAT_REDIS_URL` or 127.0.0.1:6379 if
/// it answers; else the embedded SQLite default.
async fn choose_durable_store(global: &GlobalArgs) -> Durable {
    if global.store.is_some() || global.redis.is_some() {
        let url = global.store_url();
        return Durable {
            describe: ragchat_memory::store::redact_url(&url),
            url,
        };
    }
    let redis = std::env::var("RAGCHAT_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| crate::config::DEFAULT_REDIS_URL.to_string());
    let opts = ragchat_memory::StoreOptions {
        connect_timeout: Duration::from_millis(300),
        command_timeout: Duration::from_millis(300),
        lazy: false,
        ..ragchat_memory::StoreOptions::default()
    };
    if ragchat_memory::open_store(&redis, &opts).await.is_ok() {
        return Durable {
            describe: format!(
                "{} (Redis answered there)",
                ragchat_memory::store::redact_url(&redis)
            ),
            url: redis,
        };
    }
    let sqlite = format!(
        "sqlite://{}",
        global.data_dir().join("sessions.db").display()
    );
    Durable {
        describe: format!(
            "{sqlite} (no Redis at {}; using the embedded default)",
            ragchat_memory::store::redact_url(&redis)
        ),
        url: sqlite,
    }
}

fn store_args(global: &GlobalArgs, url: &str) -> Vec<String> {
    vec![
        "--store".to_string(),
        url.to_string(),
        "--data-dir".to_string(),
        global.data_dir().display().to_string(),
        "--ttl".to_string(),
        global.ttl.to_string(),
    ]
}

/// Runs the two processes of one phase against `url`.
fn phase(global: &GlobalArgs, url: &str, user: &str) -> Result<Phase> {
    SessionKey::new(user, "demo")?;
    let args = store_args(global, url);
    let first = chat_process(&args, user, "demo", &FIRST_PROCESS)?;
    let mut memory_ms = Vec::new();
    for (question, line) in FIRST_PROCESS.iter().zip(first.iter().skip(1)) {
        show_turn(1, question, line);
        memory_ms.extend(line["memory_ms"].as_f64());
    }
    println!("  -- process 1 exits (a deploy, a crash, an idle timeout) --");
    let second = chat_process(&args, user, "demo", &[SECOND_PROCESS])?;
    let session = &second[0];
    let recovered = session["message_count"].as_u64().unwrap_or(0);
    if let Some(welcome) = session["welcome"].as_str() {
        println!("  [process 2] ragchat: {welcome}");
    }
    let answer = second.get(1).context("process 2 gave no answer")?;
    show_turn(2, SECOND_PROCESS, answer);
    memory_ms.extend(answer["memory_ms"].as_f64());
    let context_restored =
        session["resumed"] == true && recovered >= 4 && !answered_without_history(answer);
    Ok(Phase {
        store: session["store"].as_str().unwrap_or(url).to_string(),
        recovered,
        context_restored,
        memory_ms: if memory_ms.is_empty() {
            0.0
        } else {
            memory_ms.iter().sum::<f64>() / memory_ms.len() as f64
        },
    })
}

fn show_turn(process: u8, question: &str, line: &Value) {
    println!("  [process {process}] you: {question}");
    let answer = line["answer"].as_str().unwrap_or("(no answer)");
    let short: String = answer.chars().take(220).collect();
    let ellipsis = if answer.chars().count() > 220 {
        "…"
    } else {
        ""
    };
    println!("  [process {process}] ragchat: {short}{ellipsis}");
}

/// One `ragchat chat --json` child (with the store arguments `args`) fed `messages`;
/// returns its JSON lines.
fn chat_process(
    args: &[String],
    user: &str,
    session: &str,
    messages: &[&str],
) -> Result<Vec<Value>> {
    let mut child =
        Command::new(std::env::current_exe().context("cannot find the ragchat executable")?)
            .args(args)
            .args(["chat", "--json", "--user", user, "--session", session])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start a ragchat chat process")?;
    {
        let mut stdin = child.stdin.take().context("child stdin")?;
        for m in messages {
            writeln!(stdin, "{m}")?;
        }
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the chat process failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("the chat process printed something that is not JSON")?;
    if lines.len() != messages.len() + 1 {
        bail!(
            "expected {} lines from the chat process, got {}",
            messages.len() + 1,
            lines.len()
        );
    }
    Ok(lines)
}
