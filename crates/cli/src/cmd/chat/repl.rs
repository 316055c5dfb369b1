//! The interactive chat: prompt, streamed answers, sources, slash commands (`commands`),
//! the user's typed-line history (`history`), and the confirmation `/reset` asks for.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use ragchat_engine::ChatEngine;
use ragchat_memory::SessionKey;
use ragchat_rag::IngestReport;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use tokio_util::sync::CancellationToken;

use super::commands::{command, is_unconfirmed_reset, Next};
use super::history::{remove_legacy_file, HistoryFile};
use super::render::{
    dim, greeting, memory_warnings, recalled_line, source_lines, status_line, yellow,
};
use crate::terminal::visible;

/// How the REPL treats the user's typed lines and destructive commands.
#[derive(Debug, Clone)]
pub(super) struct ReplOptions {
    /// The user's typed-line history file; `/reset` removes it in any case.
    pub history: HistoryFile,
    /// Whether typed lines are loaded from and saved to it (not with `--no-history-file`).
    pub use_history_file: bool,
    /// `--yes`: `/reset` does not ask.
    pub assume_yes: bool,
    /// The data dir, where an old shared history file may remain.
    pub data_dir: std::path::PathBuf,
}

/// Runs the REPL until /quit or Ctrl-D.
///
/// # Errors
/// When the terminal cannot be read or the store fails at the start.
pub(super) async fn run(
    engine: &ChatEngine,
    mut key: SessionKey,
    report: &IngestReport,
    options: ReplOptions,
) -> Result<ExitCode> {
    let docs = format!("{} files, {} chunks", report.files, report.chunks);
    println!("{}", dim(&status_line(engine, &key, &docs)));
    for warning in memory_warnings(engine).await {
        println!("{}", yellow(&format!("warning: {warning}")));
    }
    if let Some(legacy) = remove_legacy_file(&options.data_dir) {
        println!(
            "{}",
            dim(&format!(
                "removed {}, the history file shared by every user; typed lines are now kept per user",
                legacy.display()
            ))
        );
    }
    println!("{}", greeting(engine, &key).await?);

    let mut editor = DefaultEditor::new().context("cannot start the line editor")?;
    if options.use_history_file {
        options.history.load_into(&mut editor);
    }
    loop {
        let (returned, line) = read_line(editor, "you> ").await?;
        editor = returned;
        let text = match line {
            Ok(line) => line.trim().to_string(),
            Err(ReadlineError::Interrupted) => {
                println!("{}", dim("(Ctrl-D or /quit to leave)"));
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading from the terminal"),
        };
        if text.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(text.as_str());
        if !text.starts_with('/') {
            turn(engine, &key, &text).await;
            continue;
        }
        let mut text = text;
        if is_unconfirmed_reset(&text) {
            if !options.assume_yes {
                let question = reset_question(engine, &key).await?;
                let (returned, answer) = read_line(editor, &question).await?;
                editor = returned;
                let confirmed = answer
                    .map(|a| matches!(a.trim().to_lowercase().as_str(), "y" | "yes"))
                    .unwrap_or(false);
                if !confirmed {
                    println!("kept {}", key.session());
                    continue;
                }
            }
            text = "/reset!".to_string();
        }
        match command(engine, &mut key, &text, &options.history).await {
            Ok((next, out)) => {
                if !out.is_empty() {
                    println!("{out}");
                }
                match next {
                    Next::Quit => break,
                    Next::ForgetTypedLines => {
                        let _ = editor.clear_history();
                    }
                    Next::Continue => {}
                }
            }
            Err(e) => eprintln!("{}", yellow(&format!("error: {e:#}"))),
        }
    }
    if options.use_history_file {
        if let Err(e) = options.history.save_from(&mut editor) {
            eprintln!("{}", yellow(&format!("warning: {e:#}")));
        }
    }
    println!(
        "bye — this conversation is kept in {}",
        engine.memory().store_url()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads one line on a blocking thread (the runtime keeps serving the journal replay).
async fn read_line(
    mut editor: DefaultEditor,
    prompt: &str,
) -> Result<(DefaultEditor, rustyline::Result<String>)> {
    let prompt = prompt.to_string();
    Ok(tokio::task::spawn_blocking(move || {
        let line = editor.readline(&prompt);
        (editor, line)
    })
    .await?)
}

/// "delete conversation NAME (N messages) and your typed-line history? [y/N] "
async fn reset_question(engine: &ChatEngine, key: &SessionKey) -> Result<String> {
    let count = engine
        .memory()
        .stats(key)
        .await?
        .map_or(0, |s| s.message_count);
    Ok(format!(
        "delete conversation {} ({count} messages) and your typed-line history? [y/N] ",
        key.session()
    ))
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
                let _ = stdout.write_all(visible(delta).as_bytes());
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
            if let Some(line) = recalled_line(&outcome.recalled) {
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
