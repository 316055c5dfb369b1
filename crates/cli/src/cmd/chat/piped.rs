//! Piped input: one message (or slash command) per line, each echoed as `> question`
//! before its answer so a transcript reads well, no prompts or colours; `--json` makes
//! every output line a JSON object.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use ragchat_engine::{ChatEngine, TurnOutcome};
use ragchat_memory::SessionKey;
use ragchat_rag::ConversationRef;
use serde::Serialize;

use super::commands;
use super::history::HistoryFile;
use super::render::{recalled_line, source_lines};
use crate::output;
use crate::terminal::visible;

/// How piped input is answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct PipedOptions {
    /// `--json`: one JSON object per output line.
    pub json: bool,
    /// `--yes`: `/reset` deletes without `!`.
    pub yes: bool,
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
pub(super) struct SourceLine<'a> {
    path: &'a str,
    heading: Option<&'a str>,
    score: f32,
    /// Set when the source is a recalled message of the user's conversations.
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<&'a ConversationRef>,
}

/// An earlier message a turn recalled into its context, in `--json` output.
#[derive(Serialize)]
struct RecalledLine<'a> {
    #[serde(flatten)]
    at: &'a ConversationRef,
    score: f64,
    same_session: bool,
}

/// One answer in `--json` output.
#[derive(Serialize)]
struct AnswerLine<'a> {
    r#type: &'static str,
    answer: &'a str,
    sources: Vec<SourceLine<'a>>,
    /// Earlier messages recalled into the turn's context, best first.
    recalled: Vec<RecalledLine<'a>>,
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
pub(super) async fn run(
    engine: &ChatEngine,
    mut key: SessionKey,
    options: PipedOptions,
    typed_lines: &HistoryFile,
) -> Result<ExitCode> {
    let json = options.json;
    let history = engine.memory().history(&key).await?;
    let welcome = ragchat_engine::welcome_text(history.iter());
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
            let text = if options.yes && commands::is_unconfirmed_reset(text) {
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
                if let Some(line) = recalled_line(&outcome.recalled) {
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
                conversation: s.conversation.as_ref(),
            })
            .collect(),
        recalled: outcome
            .recalled
            .iter()
            .map(|t| RecalledLine {
                at: &t.at,
                score: t.score,
                same_session: t.same_session,
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
