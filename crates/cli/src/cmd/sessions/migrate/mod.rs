//! `ragchat sessions migrate --from URL --to URL`: copy every conversation of one store
//! into another, the way a deployment that outgrew one machine moves from the embedded
//! SQLite file to PostgreSQL (or Redis).
//!
//! The stores are opened directly, with no manager and no journal: a migration is a
//! batch job that writes the target itself, and a failure should stop it (and be
//! reported) rather than be journaled for later. Re-running is the way to resume:
//! appends are idempotent by message id ([`copy`]), so a second run stores nothing
//! twice and an interrupted one finishes where it stopped.
//!
//! Bad input is refused before anything is opened or created (exit 2): unknown
//! schemes, `memory://` on either side (it holds nothing beyond one process), an
//! SQLite source file that does not exist, a target folder that does not exist, and a
//! target that is the source (compared by the stores' identities once open).

mod copy;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ragchat_memory::{
    open_store, parse_store_url, redact_url, MemoryError, SessionStore, StoreKind, StoreOptions,
    StoreSpec, Ttl,
};

use self::copy::{Copier, Summary, USER_PAGE};
use crate::config::GlobalArgs;
use crate::output;

/// The longest a migration waits for a store to connect; it is a batch job, not a
/// request, so it waits longer than `--store-timeout-ms` asks by default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one store call of a migration may take (a read or append of up to
/// 4 MiB of messages).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// `ragchat sessions migrate`
#[derive(Debug, Clone, Args)]
pub(crate) struct MigrateArgs {
    /// The store to copy from: sqlite://PATH, postgres://..., redis://... (read only;
    /// `--store` is not used).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The store to copy into (created if needed). Redis sessions get `--ttl`; SQLite
    /// and PostgreSQL sessions never expire.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Copy only this user's conversations.
    #[arg(long, short)]
    pub user: Option<String>,
    /// JSON: {"from","to","users","sessions","messages","bytes","skipped","corrupt"}.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sessions migrate`.
///
/// # Errors
/// `InvalidInput` (exit 2) for bad arguments (see the module docs); `Unavailable`
/// (exit 4) when a store cannot be reached; the summary of what was done until then is
/// printed to standard error first.
pub(crate) async fn run(global: &GlobalArgs, args: MigrateArgs) -> Result<ExitCode> {
    if let Some(user) = &args.user {
        ragchat_memory::message::validate_id("user", user)?;
    }
    let from = checked_spec("--from", &args.from)?;
    let to = checked_spec("--to", &args.to)?;
    if let StoreSpec::Sqlite(path) = &from {
        if !path.is_file() {
            return Err(invalid(format!(
                "--from: there is no SQLite store at {}",
                path.display()
            )));
        }
    }
    if let StoreSpec::Sqlite(path) = &to {
        refuse_missing_folder(path)?;
    }
    if let (StoreSpec::Sqlite(a), StoreSpec::Sqlite(b)) = (&from, &to) {
        if same_file(a, b) {
            return Err(same_store(&args.from));
        }
    }
    let opts = StoreOptions {
        connect_timeout: CONNECT_TIMEOUT.max(Duration::from_millis(global.store_timeout_ms)),
        command_timeout: COMMAND_TIMEOUT.max(Duration::from_millis(global.store_timeout_ms)),
        lazy: false,
        ..StoreOptions::default()
    };
    let source = open("source", &args.from, &opts).await?;
    let target = open("target", &args.to, &opts).await?;
    if source.identity() == target.identity() {
        return Err(same_store(&args.from));
    }

    let progress = progress_bar();
    let copier = Copier {
        source: source.as_ref(),
        target: target.as_ref(),
        target_ttl: match target.kind() {
            StoreKind::Redis => Ttl::secs(global.ttl),
            _ => Ttl::NEVER,
        },
        progress: &progress,
    };
    let mut summary = Summary {
        from: source.describe(),
        to: target.describe(),
        ..Summary::default()
    };
    let walked = walk(&copier, args.user.as_deref(), &mut summary).await;
    progress.finish_and_clear();
    if let Err(e) = walked {
        eprintln!(
            "stopped after {} session(s): {} message(s) stored, {} already there; \
             run the same command again to resume",
            summary.sessions, summary.messages, summary.skipped
        );
        return Err(e);
    }
    if args.json {
        output::json_line(&summary)?;
    } else {
        print_summary(&summary, args.user.as_deref());
    }
    if summary.corrupt > 0 {
        eprintln!(
            "warning: {} stored message(s) of {} could not be read and were not copied",
            summary.corrupt, summary.from
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies the one user asked for, or every user of the source, page by page.
async fn walk(copier: &Copier<'_>, user: Option<&str>, summary: &mut Summary) -> Result<()> {
    if let Some(user) = user {
        return copier.user(user, summary).await;
    }
    let mut after: Option<String> = None;
    loop {
        let page = copier.source.users(after.as_deref(), USER_PAGE).await?;
        for user in &page {
            copier.user(user, summary).await?;
        }
        if page.len() < USER_PAGE {
            return Ok(());
        }
        after = page.last().cloned();
    }
}

/// The parsed URL of `flag`, refusing what cannot be migrated.
fn checked_spec(flag: &str, url: &str) -> Result<StoreSpec> {
    let spec = parse_store_url(url).with_context(|| format!("{flag} {}", redact_url(url)))?;
    if spec.kind() == StoreKind::Memory {
        return Err(invalid(format!(
            "{flag}: memory:// holds nothing beyond one process; migrate between \
             sqlite://, postgres:// and redis:// stores"
        )));
    }
    Ok(spec)
}

/// Refuses an SQLite target in a folder that does not exist (a typo must not create
/// folders).
fn refuse_missing_folder(path: &Path) -> Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(folder) if !folder.is_dir() => Err(invalid(format!(
            "--to: the folder {} does not exist (create it first)",
            folder.display()
        ))),
        _ => Ok(()),
    }
}

/// Whether two SQLite paths name one file (the second may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    resolve(a) == resolve(b)
}

async fn open(what: &str, url: &str, opts: &StoreOptions) -> Result<Arc<dyn SessionStore>> {
    open_store(url, opts)
        .await
        .with_context(|| format!("cannot open the {what} store {}", redact_url(url)))
}

fn invalid(message: String) -> anyhow::Error {
    MemoryError::InvalidInput(message).into()
}

fn same_store(url: &str) -> anyhow::Error {
    invalid(format!(
        "--from and --to are the same store ({}): nothing to migrate",
        redact_url(url)
    ))
}

/// A spinner on standard error when it is a terminal; hidden otherwise (logs, pipes).
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} sessions: {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_summary(s: &Summary, user: Option<&str>) {
    if s.sessions == 0 {
        match user {
            Some(user) => println!("{user} has no conversations in {}", s.from),
            None => println!("{} holds no conversations", s.from),
        }
        return;
    }
    println!(
        "copied {} -> {}: {} user(s), {} session(s); {} message(s) ({}) stored now, \
         {} already there, {} unreadable skipped",
        s.from,
        s.to,
        s.users,
        s.sessions,
        s.messages,
        output::bytes(s.bytes),
        s.skipped,
        s.corrupt
    );
}
