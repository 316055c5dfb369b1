//! `ragchat bench http`: load a running server (to be built: issue #6).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::config::GlobalArgs;

/// `ragchat bench http` options.
#[derive(Debug, Clone, Args)]
pub struct HttpBenchArgs {
    /// Base URL of the server.
    #[arg(long)]
    pub url: String,
}

/// Runs the load.
pub async fn run(_global: &GlobalArgs, _args: HttpBenchArgs) -> Result<ExitCode> {
    anyhow::bail!("`ragchat bench http` is not built yet")
}
