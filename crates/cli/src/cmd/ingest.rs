//! `ragchat ingest DIR`: build (or reuse) the index of a folder ahead of time.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use ragchat_rag::CorpusSource;
use serde::Serialize;

use crate::config::GlobalArgs;
use crate::engine_setup::open_index;
use crate::output;

/// `ragchat ingest` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct IngestArgs {
    /// Folder of documents (.md, .markdown, .txt, .rst, .html, .htm, .pdf), read
    /// recursively; every other file is listed as skipped, with the reason.
    pub dir: PathBuf,
    /// JSON: {"dir","files","chunks","bytes","skipped":[{"path","reason"}],"seconds","reused","index"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Skipped {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct Report {
    dir: String,
    files: usize,
    chunks: usize,
    bytes: u64,
    skipped: Vec<Skipped>,
    seconds: f64,
    reused: bool,
    index: String,
}

/// Runs `ingest`.
pub(crate) async fn run(global: &GlobalArgs, args: IngestArgs) -> Result<ExitCode> {
    let source = CorpusSource::Dir(args.dir.clone());
    let progress = !args.json && std::io::stderr().is_terminal();
    let (index, report) = {
        let global = global.clone();
        let source = source.clone();
        tokio::task::spawn_blocking(move || open_index(&global, &source, progress)).await??
    };
    let out = Report {
        dir: args.dir.display().to_string(),
        files: report.files,
        chunks: report.chunks,
        bytes: report.bytes,
        skipped: report
            .skipped
            .iter()
            .map(|s| Skipped {
                path: s.path.clone(),
                reason: s.reason.to_string(),
            })
            .collect(),
        seconds: report.elapsed.as_secs_f64(),
        reused: report.reused,
        index: index.path().display().to_string(),
    };
    if args.json {
        output::json_line(&out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if out.reused {
        "unchanged; reused the index of"
    } else {
        "indexed"
    };
    println!(
        "{verb} {}: {} file(s), {} chunk(s), {} in {:.2} s",
        out.dir,
        out.files,
        out.chunks,
        output::bytes(out.bytes),
        out.seconds
    );
    if !out.skipped.is_empty() {
        println!("skipped {} file(s):", out.skipped.len());
        for s in &out.skipped {
            println!("  {}: {}", s.path, s.reason);
        }
    }
    println!("index: {}", out.index);
    Ok(ExitCode::SUCCESS)
}
