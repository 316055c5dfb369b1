//! Slash commands of `ragchat chat`, shared by the terminal REPL and piped input.
//!
//! Commands that would silently do the wrong thing refuse instead: `/switch` to a
//! conversation that does not exist (it offers `/new`), `/new` with a name that is not a
//! valid id or that is taken, `/reset` without confirmation. Confirmation is the caller's
//! job: the REPL asks in the terminal and sends `/reset!`; piped input must say `/reset!`
//! (or run with `--yes`), since there is nobody to ask.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use ragchat_engine::ChatEngine;
use ragchat_memory::SessionKey;

use super::history::HistoryFile;
use super::render::{dim, greeting, role_label};
use crate::output;
use crate::terminal::visible;

pub(super) const HELP: &str = "\
commands:
  /history        the conversation so far
  /stats          messages, size and expiry of this conversation
  /sessions       your conversations (* marks this one)
  /new [NAME]     start a new conversation (named NAME, or by the time)
  /switch NAME    continue another conversation
  /reset          delete this conversation and your typed-line history (asks first; /reset! does not)
  /help           this list
  /quit           leave (Ctrl-D works too)";

const COMMANDS: &str = "/history /stats /sessions /new /switch /reset /help /quit";

/// The rule for conversation names, as users are told it.
const NAME_RULE: &str = "names are 1-64 characters: letters, digits, '.', '_' and '-'";

/// What a slash command asks the loop to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Read the next line.
    Continue,
    /// The conversation and the typed-line history were deleted: the REPL forgets the
    /// lines it holds in memory too.
    ForgetTypedLines,
    /// Leave.
    Quit,
}

/// Whether `line` is `/reset` (which needs a confirmation) rather than `/reset!`.
pub(super) fn is_unconfirmed_reset(line: &str) -> bool {
    line.split_whitespace().next() == Some("/reset")
}

/// Runs a slash command; returns what to do next and the text to show.
///
/// # Errors
/// A refused command (unknown conversation, invalid or taken name, `/reset` without
/// confirmation), or a store error; the conversation is unchanged.
pub(super) async fn command(
    engine: &ChatEngine,
    key: &mut SessionKey,
    line: &str,
    history: &HistoryFile,
) -> Result<(Next, String)> {
    let mut out = String::new();
    let line = line.trim();
    let (name, arg) = match line.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, Some(rest.trim()).filter(|r| !r.is_empty())),
        None => (line, None),
    };
    let memory = engine.memory();
    let mut next = Next::Continue;
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
                    visible(&m.content)
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
        "/sessions" => sessions(engine, key, &mut out).await?,
        "/new" => {
            let name = match arg {
                Some(name) => {
                    let wanted = conversation_key(key, name)?;
                    if memory.stats(&wanted).await?.is_some() {
                        bail!("conversation {name} already exists; /switch {name} continues it");
                    }
                    wanted
                }
                None => fresh_key(engine, key).await?,
            };
            *key = name;
            let _ = write!(out, "new conversation {}", key.session());
        }
        "/switch" => {
            let Some(name) = arg else {
                bail!("usage: /switch NAME (/sessions lists your conversations)");
            };
            let wanted = conversation_key(key, name)?;
            if wanted == *key {
                let _ = write!(out, "already in {name}");
            } else if memory.stats(&wanted).await?.is_none() {
                bail!(
                    "there is no conversation {name}; /new {name} starts it (/sessions lists yours)"
                );
            } else {
                *key = wanted;
                let greeting = greeting(engine, key).await?;
                let _ = write!(out, "switched to {}\n{greeting}", key.session());
            }
        }
        "/reset" => bail!(
            "/reset deletes this conversation and needs a confirmation: in a terminal it asks; \
             otherwise type /reset! (or start the chat with --yes)"
        ),
        "/reset!" => {
            let deleted = memory.delete(key).await?;
            history.remove()?;
            next = Next::ForgetTypedLines;
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
    Ok((next, out.trim_end().to_string()))
}

/// The key of conversation `name` of the same user; an invalid name is refused with the rule.
fn conversation_key(key: &SessionKey, name: &str) -> Result<SessionKey> {
    SessionKey::new(key.user(), name).map_err(|_| {
        ragchat_memory::MemoryError::InvalidInput(format!(
            "{name:?} is not a valid conversation name: {NAME_RULE}"
        ))
        .into()
    })
}

/// A new conversation named by the time (`chat-20261201-093012`), with a suffix when taken.
async fn fresh_key(engine: &ChatEngine, key: &SessionKey) -> Result<SessionKey> {
    let stamp = chrono::Local::now()
        .format("chat-%Y%m%d-%H%M%S")
        .to_string();
    for n in 1..100 {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let candidate = SessionKey::new(key.user(), name)?;
        if engine.memory().stats(&candidate).await?.is_none() && candidate != *key {
            return Ok(candidate);
        }
    }
    bail!("cannot find a free conversation name; give one: /new NAME")
}

/// `/sessions`: the user's conversations, `*` on the current one, which is listed even
/// when it is new and has no message yet.
async fn sessions(engine: &ChatEngine, key: &SessionKey, out: &mut String) -> Result<()> {
    let sessions = engine.memory().list_sessions(key.user()).await?;
    let listed = sessions.iter().any(|s| s.session == key.session());
    if !listed {
        let _ = writeln!(
            out,
            "* {:<24} {:>5} messages, new (kept from its first message)",
            key.session(),
            0
        );
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
    Ok(())
}
