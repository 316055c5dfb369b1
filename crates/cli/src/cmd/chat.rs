//! `ragchat chat`: talk to your documents.
//!
//! In a terminal: a line-editing REPL with input history, streamed answers, numbered
//! sources and slash commands. From a pipe: one message per line, each echoed as
//! `> question` before its answer so a transcript reads well, no prompts or colours;
//! `--json` makes every output line a JSON object.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ragchat_memory::{Message, Role, SessionKey, StoreKind, DEFAULT_SESSION};
use ragchat_server::{ChatEngine, TurnOutcome};
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::engine_setup::{build_engine, EngineArgs};
use crate::output;
use crate::terminal::visible;

mod commands;
pub(crate) mod history;
pub(crate) mod repl;

/// `ragchat chat` options.
#[derive(Debug, Clone, Args)]
pub struct ChatArgs {
    /// Who is chatting [default: $USER, else "local"].
    #[arg(long, short)]
    pub user: Option<String>,
    /// Conversation to continue or start.
    #[arg(long, short, default_value = DEFAULT_SESSION)]
    pub session: String,
    /// One JSON object per output line (for scripts; implies no prompts).
    #[arg(long)]
    pub json: bool,
    /// Do not ask before deleting: `/reset` acts like `/reset!`.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Keep the lines typed in the terminal in memory only, not in
    /// <data dir>/history/<user>.txt.
    #[arg(long, env = "RAGCHAT_NO_HISTORY_FILE")]
    pub no_history_file: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The default user: `$USER` when it is a valid id, else `local`.
pub fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| ragchat_memory::message::validate_id("user", u).is_ok())
        .unwrap_or_else(|| "local".to_string())
}

/// Runs `chat`.
pub async fn run(global: &GlobalArgs, args: ChatArgs) -> Result<ExitCode> {
    let user = args.user.clone().unwrap_or_else(default_user);
    let key = SessionKey::new(&user, &args.session)?;
    let interactive =
        !args.json && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let show_progress = std::io::stderr().is_terminal() && !args.json;
    let (engine, report) = build_engine(global, &args.engine, show_progress).await?;
    let history = history::HistoryFile::for_user(&global.data_dir(), key.user());
    let result = if interactive {
        let options = repl::ReplOptions {
            history,
            use_history_file: !args.no_history_file,
            assume_yes: args.yes,
            data_dir: global.data_dir(),
        };
        repl::run(&engine, key, &report, options).await
    } else {
        run_piped(&engine, key, &args, &history).await
    };
    output::warn_if_degraded(engine.memory()).await;
    result
}

/// The first line of `--json` output.
#[derive(Serialize)]
struct SessionLine<'a> {
    r#type: &'static str,
    user: &'a str,
    session: &'a str,
    resumed: bool,
    message_count: usize,
    welcome: Option<String>,
    store: String,
}

/// One source of an answer in `--json` output.
#[derive(Serialize)]
pub struct SourceLine<'a> {
    path: &'a str,
    heading: Option<&'a str>,
    score: f32,
}

/// One answer in `--json` output.
#[derive(Serialize)]
struct AnswerLine<'a> {
    r#type: &'static str,
    answer: &'a str,
    sources: Vec<SourceLine<'a>>,
    message_id: String,
    /// Milliseconds conversation memory took in this turn (read + append).
    memory_ms: f64,
    journaled: bool,
    /// The offline answerer stood in for the LLM (see `fallback_reason`).
    fallback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    fallback_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct CommandLine<'a> {
    r#type: &'static str,
    command: &'a str,
    output: &'a str,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    r#type: &'static str,
    message: &'a str,
}

/// Reads messages from standard input, one per line, and answers each.
async fn run_piped(
    engine: &ChatEngine,
    mut key: SessionKey,
    args: &ChatArgs,
    typed_lines: &history::HistoryFile,
) -> Result<ExitCode> {
    let json = args.json;
    let history = engine.memory().history(&key).await?;
    let welcome = ragchat_server::engine::welcome_text(history.iter());
    let count = history.len();
    drop(history);
    if json {
        output::json_line(&SessionLine {
            r#type: "session",
            user: key.user(),
            session: key.session(),
            resumed: count > 0,
            message_count: count,
            welcome: welcome.clone(),
            store: engine.memory().store_url(),
        })?;
    } else if let Some(w) = &welcome {
        println!("{}", visible(w));
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(16);
    // Standard input is read on a blocking thread so the runtime keeps serving the
    // journal replay while waiting for the next line.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let failed = line.is_err();
            if tx.blocking_send(line).is_err() || failed {
                break;
            }
        }
    });
    let mut printed_before = !json && welcome.is_some();
    while let Some(line) = rx.recv().await {
        let line = line?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if !json {
            // The input is not on screen (or not in the file stdout goes to): echo it, so
            // each answer follows its question; a blank line between exchanges.
            if printed_before {
                println!();
            }
            println!("> {text}");
            printed_before = true;
        }
        if text.starts_with('/') {
            // Nobody can be asked here: `/reset` deletes only with --yes (or as `/reset!`).
            let text = if args.yes && commands::is_unconfirmed_reset(text) {
                "/reset!"
            } else {
                text
            };
            let mut current = key.clone();
            let (next, out) = match commands::command(engine, &mut current, text, typed_lines).await
            {
                Ok(done) => done,
                Err(e) => {
                    report_error(&format!("{e:#}"), json)?;
                    continue;
                }
            };
            if json {
                output::json_line(&CommandLine {
                    r#type: "command",
                    command: text,
                    output: &out,
                })?;
            } else if !out.is_empty() {
                println!("{out}");
            }
            key = current;
            if next == commands::Next::Quit {
                break;
            }
            continue;
        }
        let mut stdout = std::io::stdout();
        let outcome = if json {
            engine.turn(&key, text, &mut |_| {}).await
        } else {
            engine
                .turn(&key, text, &mut |delta| {
                    let _ = stdout.write_all(visible(delta).as_bytes());
                    let _ = stdout.flush();
                })
                .await
        };
        match outcome {
            Ok(outcome) if json => output::json_line(&answer_line(&outcome))?,
            Ok(outcome) => {
                println!();
                for line in source_lines(&outcome.answer) {
                    println!("{line}");
                }
                if let Some(notice) = &outcome.fallback {
                    println!("note: {notice}");
                }
            }
            Err(e) => report_error(&e.to_string(), json)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn answer_line(outcome: &TurnOutcome) -> AnswerLine<'_> {
    AnswerLine {
        r#type: "answer",
        answer: &outcome.answer.content,
        sources: outcome
            .answer
            .sources
            .iter()
            .map(|s| SourceLine {
                path: &s.path,
                heading: s.heading.as_deref(),
                score: s.score,
            })
            .collect(),
        message_id: outcome.answer.id.to_string(),
        memory_ms: (outcome.timings.memory_read + outcome.timings.memory_write).as_secs_f64()
            * 1000.0,
        journaled: outcome.journaled,
        fallback: outcome.fallback.is_some(),
        fallback_reason: outcome.fallback.as_deref(),
    }
}

/// A message or command that failed: the error goes to stderr (and as a JSON line),
/// and the chat goes on.
fn report_error(message: &str, json: bool) -> Result<()> {
    if json {
        output::json_line(&ErrorLine {
            r#type: "error",
            message,
        })?;
    }
    eprintln!("error: {}", visible(message));
    Ok(())
}

/// "  [1] path › heading (lines a-b)" for each source of an answer; one line is
/// "(line a)", as on the web page.
pub fn source_lines(answer: &Message) -> Vec<String> {
    answer
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let heading = s
                .heading
                .as_deref()
                .map(|h| format!(" › {h}"))
                .unwrap_or_default();
            let lines = line_range(s.line_start, s.line_end);
            // Paths and headings come from documents: shown, never executed.
            format!(
                "  [{}] {}",
                i + 1,
                visible(&format!("{}{heading}{lines}", s.path))
            )
        })
        .collect()
}

/// " (line 3)", " (lines 3-5)", or nothing: how a source's lines are shown, in the
/// terminal and on the web page (`web/app.js` renders them the same way).
pub fn line_range(start: Option<u32>, end: Option<u32>) -> String {
    match (start, end) {
        (Some(a), Some(b)) if b > a => format!(" (lines {a}-{b})"),
        (Some(a), _) => format!(" (line {a})"),
        _ => String::new(),
    }
}

/// The one-line status shown when a chat starts.
pub fn status_line(engine: &ChatEngine, key: &SessionKey, docs: &str) -> String {
    format!(
        "ragchat · user {} · session {} · memory {} · answers {} · docs {docs}",
        key.user(),
        key.session(),
        engine.memory().store_url(),
        engine.answerer().describe(),
    )
}

/// Warnings worth showing when a chat starts.
pub async fn memory_warnings(engine: &ChatEngine) -> Vec<String> {
    let mut warnings = Vec::new();
    if engine.memory().store_kind() == StoreKind::Memory {
        warnings.push(
            "memory is RAM-only (memory://): this conversation is lost when ragchat exits"
                .to_string(),
        );
    }
    if let Ok(status) = engine.memory().status().await {
        if status.mode == ragchat_memory::Mode::Degraded || status.pending_sync > 0 {
            warnings.push(format!(
                "{} is unreachable: messages are kept in the local journal ({} waiting) and replayed when it is back",
                status.store, status.pending_sync
            ));
        }
    }
    warnings
}

/// Role label for transcripts.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::User => "you",
        Role::Assistant => "ragchat",
        Role::System => "system",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rendering_of_line_ranges() {
        assert_eq!(line_range(Some(3), Some(3)), " (line 3)");
        assert_eq!(line_range(Some(3), Some(5)), " (lines 3-5)");
        assert_eq!(line_range(Some(3), None), " (line 3)");
        assert_eq!(line_range(None, None), "");
    }
}
