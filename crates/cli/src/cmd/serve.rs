//! `ragchat serve`: the HTTP API (to be built: issue #6).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::config::GlobalArgs;

/// `ragchat serve` options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: crate::engine_setup::EngineArgs,
}

/// Runs the server.
pub async fn run(_global: &GlobalArgs, _args: ServeArgs) -> Result<ExitCode> {
    anyhow::bail!("`ragchat serve` is not built yet")
}
