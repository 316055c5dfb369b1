//! The interactive chat: prompt, streamed answers, sources, slash commands.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ragchat_memory::SessionKey;
use ragchat_rag::IngestReport;
use ragchat_server::ChatEngine;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use tokio_util::sync::CancellationToken;

use super::{memory_warnings, role_label, source_lines, status_line};
use crate::config::GlobalArgs;
use crate::output;

const HELP: &str = "\
commands:
  /history        the conversation so far
  /stats          messages, size and expiry of this conversation
  /sessions       your conversations
  /new [NAME]     start a new conversation (named NAME, or by the time)
  /switch NAME    continue another conversation
  /reset          delete this conversation's history
  /help           this list
  /quit           leave (Ctrl-D works too)";

const COMMANDS: &str = "/history /stats /sessions /new /switch /reset /help /quit";

/// What a slash command asks the loop to do next.
pub enum Next {
    Continue,
    Quit,
}

fn colour(code: &str, text: &str) -> String {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn dim(text: &str) -> String {
    colour("2", text)
}

fn yellow(text: &str) -> String {
    colour("33", text)
}

/// Runs the REPL until /quit or Ctrl-D.
pub async fn run(
    global: &GlobalArgs,
    engine: &ChatEngine,
    mut key: SessionKey,
    report: &IngestReport,
) -> Result<ExitCode> {
    let docs = format!("{} files, {} chunks", report.files, report.chunks);
    println!("{}", dim(&status_line(engine, &key, &docs)));
    for warning in memory_warnings(engine).await {
        println!("{}", yellow(&format!("warning: {warning}")));
    }
    greet(engine, &key).await?;

    let history_file = global.data_dir().join("chat_history.txt");
    let mut editor = DefaultEditor::new().context("cannot start the line editor")?;
    let _ = editor.load_history(&history_file);
    loop {
        let prompt = "you> ".to_string();
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline(&prompt);
            (editor, line)
        })
        .await?;
        editor = returned;
        match line {
            Ok(line) => {
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(text);
                if text.starts_with('/') {
                    match command(engine, &mut key, text).await {
                        Ok((next, out)) => {
                            if !out.is_empty() {
                                println!("{out}");
                            }
                            if matches!(next, Next::Quit) {
                                break;
                            }
                        }
                        Err(e) => eprintln!("{}", yellow(&format!("error: {e:#}"))),
                    }
                } else {
                    turn(engine, &key, text).await;
                }
            }
            Err(ReadlineError::Interrupted) => println!("{}", dim("(Ctrl-D or /quit to leave)")),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading from the terminal"),
        }
    }
    if let Some(parent) = history_file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = editor.save_history(&history_file);
    println!(
        "bye — this conversation is kept in {}",
        engine.memory().store_url()
    );
    Ok(ExitCode::SUCCESS)
}

async fn greet(engine: &ChatEngine, key: &SessionKey) -> Result<()> {
    println!("{}", greeting(engine, key).await?);
    Ok(())
}

async fn greeting(engine: &ChatEngine, key: &SessionKey) -> Result<String> {
    Ok(match engine.welcome(key).await? {
        Some(welcome) => format!("{welcome} (say \"continue\" to pick up where we left off)"),
        None => "Ask a question about the documents. /help lists the commands.".to_string(),
    })
}

/// One question: the answer streams as it is produced; Ctrl-C stops it (the partial
/// answer is kept, marked incomplete).
async fn turn(engine: &ChatEngine, key: &SessionKey, text: &str) {
    let cancel = CancellationToken::new();
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        })
    };
    print!("ragchat> ");
    let _ = std::io::stdout().flush();
    let mut stdout = std::io::stdout();
    let outcome = engine
        .turn_cancellable(
            key,
            text,
            &mut |delta| {
                let _ = stdout.write_all(delta.as_bytes());
                let _ = stdout.flush();
            },
            &cancel,
        )
        .await;
    watcher.abort();
    println!();
    match outcome {
        Ok(outcome) => {
            if cancel.is_cancelled() {
                println!(
                    "{}",
                    dim("(stopped; the partial answer is kept, marked incomplete)")
                );
            }
            for line in source_lines(&outcome.answer) {
                println!("{}", dim(&line));
            }
            if let Some(notice) = &outcome.fallback {
                println!("{}", yellow(&format!("({notice})")));
            }
            if outcome.journaled {
                println!(
                    "{}",
                    yellow("(the store is unreachable: kept in the local journal)")
                );
            }
        }
        Err(e) => eprintln!("{}", yellow(&format!("error: {e}"))),
    }
}

/// Runs a slash command; returns what to do next and the text to show.
pub async fn command(
    engine: &ChatEngine,
    key: &mut SessionKey,
    line: &str,
) -> Result<(Next, String)> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut words = line.split_whitespace();
    let name = words.next().unwrap_or("");
    let arg = words.next();
    let memory = engine.memory();
    match name {
        "/quit" | "/exit" | "/q" => return Ok((Next::Quit, out)),
        "/help" | "/?" => out.push_str(HELP),
        "/history" => {
            let history = memory.history(key).await?;
            if history.is_empty() {
                out.push_str("(no messages yet)");
            }
            for m in history.iter() {
                let _ = writeln!(
                    out,
                    "{} {}: {}",
                    dim(&output::time(m.created_at)),
                    role_label(m.role),
                    m.content
                );
            }
        }
        "/stats" => match memory.stats(key).await? {
            Some(s) => {
                let _ = write!(
                    out,
                    "{}/{}: {} messages, {}, expires in {}, last message {}, store {} ({})",
                    s.user,
                    s.session,
                    s.message_count,
                    output::bytes(s.bytes),
                    output::ttl(s.ttl_remaining_secs),
                    output::ago(s.updated_at),
                    s.store,
                    format!("{:?}", s.mode).to_lowercase()
                );
            }
            None => {
                let _ = write!(out, "{}/{}: no messages yet", key.user(), key.session());
            }
        },
        "/sessions" => {
            let sessions = memory.list_sessions(key.user()).await?;
            if sessions.is_empty() {
                out.push_str("(no conversations yet)");
            }
            for s in sessions {
                let marker = if s.session == key.session() { "*" } else { " " };
                let _ = writeln!(
                    out,
                    "{marker} {:<24} {:>5} messages, last {}",
                    s.session,
                    s.message_count,
                    output::ago(s.updated_at)
                );
            }
        }
        "/new" => {
            let name = arg.map(str::to_string).unwrap_or_else(|| {
                chrono::Local::now()
                    .format("chat-%Y%m%d-%H%M%S")
                    .to_string()
            });
            *key = SessionKey::new(key.user(), name)?;
            let _ = write!(out, "new conversation {}", key.session());
        }
        "/switch" => {
            let Some(name) = arg else {
                anyhow::bail!("usage: /switch NAME (see /sessions)");
            };
            *key = SessionKey::new(key.user(), name)?;
            let _ = write!(
                out,
                "switched to {}\n{}",
                key.session(),
                greeting(engine, key).await?
            );
        }
        "/reset" => {
            let deleted = memory.delete(key).await?;
            out.push_str(if deleted {
                "history deleted; starting afresh"
            } else {
                "nothing to delete"
            });
        }
        other => {
            let _ = write!(out, "unknown command {other}; commands: {COMMANDS}");
        }
    }
    Ok((Next::Continue, out.trim_end().to_string()))
}
