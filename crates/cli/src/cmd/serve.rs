//! `ragchat serve`: the HTTP API and the web chat page.
//!
//! Checks the keys file and the listen address before anything is opened, builds the
//! engine, binds, and serves until SIGTERM or Ctrl-C, then shuts down gracefully
//! (in-flight turns finish and are stored). SIGHUP re-reads the keys file.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use ragchat_server::persistence::RedisPersistence;
use ragchat_server::{check_bind_address, AppState, Auth, ServerConfig};

use crate::config::GlobalArgs;
use crate::engine_setup::build_engine;

/// Address `serve` listens on by default: loopback only.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// `ragchat serve` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on. Anything but loopback needs --api-keys.
    #[arg(long, env = "RAGCHAT_ADDR", value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// API keys file: one `KEY USER [OPTIONS]` per line, KEY in clear or as
    /// sha256:HEX (# comments and blank lines allowed); clients send
    /// `Authorization: Bearer KEY`. Re-read on SIGHUP. Without it every request acts as
    /// user "local".
    #[arg(long, env = "RAGCHAT_API_KEYS_FILE", value_name = "FILE")]
    pub api_keys: Option<PathBuf>,

    #[command(flatten)]
    pub engine: crate::engine_setup::EngineArgs,

    #[command(flatten)]
    pub limits: crate::cmd::serve_limits::LimitArgs,
}

/// Runs the server until SIGTERM or Ctrl-C.
///
/// # Errors
/// An invalid keys file (naming the line), a non-loopback address without keys, a store
/// or index that cannot be opened, or an address that cannot be bound.
pub(crate) async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<ExitCode> {
    let auth = match &args.api_keys {
        Some(path) => Auth::from_file(path)?,
        None => Auth::local(),
    };
    check_bind_address(args.addr, &auth)?;

    let show_progress = std::io::stderr().is_terminal();
    let (engine, report) = build_engine(global, &args.engine, show_progress, false).await?;
    let mut config = ServerConfig::for_message_limit(global.max_message_bytes);
    config.redis_url = global.store_is_remote().then(|| global.store_url());
    args.limits.apply(&mut config);
    let store = engine.memory().store_url();
    let answerer = engine.answerer().describe();
    let state = AppState::new(engine, auth.clone(), config);

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr().unwrap_or(args.addr);
    eprintln!(
        "ragchat serving http://{addr} (store {store}, answerer {answerer}, {} documents in {} chunks, {})",
        report.files,
        report.chunks,
        match &auth {
            Auth::Local => "no API keys: every request is user \"local\"".to_string(),
            Auth::Keys(keys) => format!("API keys from {}", keys.path().display()),
        }
    );
    for warning in auth.warnings() {
        eprintln!("warning: {warning}");
    }
    if state.persistence().check().await == RedisPersistence::None {
        eprintln!(
            "warning: {}",
            ragchat_server::routes::ops::NO_PERSISTENCE_WARNING
        );
    }
    for warning in state.memory().store_warnings().await {
        eprintln!("warning: {warning}");
    }
    for warning in state.memory().other_store_warnings().await? {
        eprintln!("warning: {warning}");
    }
    if let Some(max_age) = global.retention.0 {
        // Opening the store ran the first pass; these follow while the server runs.
        state.memory().spawn_retention(max_age);
    }

    ragchat_server::serve(listener, state, ragchat_server::shutdown_signal())
        .await
        .context("the server failed")?;
    eprintln!("ragchat: stopped");
    Ok(ExitCode::SUCCESS)
}
