//! Options shared by the commands that answer questions (`chat`, `serve`, `demo`):
//! which documents, which answerer; and building the `ChatEngine` from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ragchat_engine::{ChatEngine, EngineConfig, RecallConfig};
use ragchat_rag::{
    Answerer, CorpusSource, ExtractiveAnswerer, FallbackAnswerer, Index, IngestOptions,
    IngestProgress, IngestReport, OpenAiAnswerer, OpenAiConfig,
};

use crate::config::{on_off, GlobalArgs};

/// Documents and answerer options.
#[derive(Debug, Clone, Args)]
pub(crate) struct EngineArgs {
    /// Folder of documents to answer from (.md, .markdown, .txt, .rst, .html, .htm, .pdf)
    /// [default: the bundled machine-learning articles].
    #[arg(long, env = "RAGCHAT_DOCS", value_name = "DIR")]
    pub docs: Option<PathBuf>,

    /// OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server), e.g.
    /// http://localhost:11434/v1. Without it answers are extractive and offline.
    #[arg(long, env = "RAGCHAT_LLM_URL", value_name = "URL")]
    pub llm_url: Option<String>,

    /// Model name for --llm-url.
    #[arg(
        long,
        env = "RAGCHAT_LLM_MODEL",
        value_name = "NAME",
        default_value = "gpt-4o-mini"
    )]
    pub model: String,

    /// API key for --llm-url.
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,

    /// Seconds to wait for the LLM before giving up on a turn.
    #[arg(
        long,
        env = "RAGCHAT_LLM_TIMEOUT",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub llm_timeout: u64,

    /// Document passages retrieved per question.
    #[arg(long, env = "RAGCHAT_TOP_K", value_name = "N", default_value_t = 3)]
    pub top_k: usize,

    /// Bring earlier messages of the conversation that match a question back into its
    /// context (cited as "conversation `trip`, 2026-11-20"), within the same token budget.
    /// Needs a store that searches (SQLite, PostgreSQL, Redis with --archive).
    #[arg(long, env = "RAGCHAT_RECALL", value_name = "on|off", default_value = "on", value_parser = on_off, action = clap::ArgAction::Set)]
    pub recall: bool,

    /// Also recall from the user's other conversations [default: on for `chat`, off for
    /// `serve`].
    #[arg(long, env = "RAGCHAT_RECALL_ACROSS", value_name = "on|off", value_parser = on_off)]
    pub recall_across: Option<bool>,
}

impl EngineArgs {
    /// The corpus these options name.
    pub(crate) fn corpus(&self) -> CorpusSource {
        match &self.docs {
            Some(dir) => CorpusSource::Dir(dir.clone()),
            None => CorpusSource::Bundled,
        }
    }

    /// The answerer these options name, for the documents of `index`: the offline extractive
    /// answerer, or the LLM backed by it (it answers small talk, and answers when the LLM
    /// fails after its retries, saying so).
    ///
    /// # Errors
    /// When the LLM client cannot be built (e.g. a malformed URL).
    pub(crate) fn answerer(&self, index: &Index) -> Result<Arc<dyn Answerer>> {
        let offline = Arc::new(ExtractiveAnswerer::for_index(index));
        match &self.llm_url {
            None => Ok(offline),
            Some(url) => {
                let mut config = OpenAiConfig::new(url.clone(), self.model.clone());
                config.api_key = self.api_key.clone().filter(|k| !k.is_empty());
                config.timeout = Duration::from_secs(self.llm_timeout.max(1));
                let llm = OpenAiAnswerer::new(config).context("cannot set up the LLM client")?;
                Ok(Arc::new(FallbackAnswerer::new(Arc::new(llm), offline)))
            }
        }
    }
}

/// Keeps the PDF reader's panics off the terminal.
///
/// pdf-extract panics on some malformed PDFs; ragchat-rag runs it on a thread named
/// [`ragchat_rag::PDF_THREAD_NAME`], catches the panic and lists the file as skipped with
/// the reason. The default hook would also print a Rust panic message and backtrace hint
/// in the middle of an ingest; this hook logs those at debug level instead and leaves
/// every other panic to the default hook.
pub(crate) fn quiet_pdf_reader_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(ragchat_rag::PDF_THREAD_NAME) {
            tracing::debug!("the PDF reader gave up on a file: {info}");
        } else {
            default(info);
        }
    }));
}

/// Opens (building when needed) the index of `source` under the data dir, with a
/// progress bar on a terminal.
///
/// # Errors
/// When the folder does not exist or the index cannot be written.
pub(crate) fn open_index(
    global: &GlobalArgs,
    source: &CorpusSource,
    show_progress: bool,
) -> Result<(Index, IngestReport)> {
    let data_dir = global.data_dir();
    let bar = show_progress.then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(format!("indexing {source}"));
        bar
    });
    let progress = |p: IngestProgress| {
        let Some(bar) = &bar else { return };
        match p {
            IngestProgress::Scanned { bytes, .. } => bar.set_length(bytes),
            IngestProgress::Indexed { bytes_done, .. } => bar.set_position(bytes_done),
            _ => {}
        }
    };
    let result = Index::open_or_build(&data_dir, source, &IngestOptions::default(), &progress)
        .with_context(|| format!("cannot index {source}"));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

/// Builds the chat engine: memory from the global options, documents and answerer
/// from `args`; recall across conversations by `args`, else `recall_across`.
///
/// # Errors
/// When the store, the index or the answerer cannot be set up.
pub(crate) async fn build_engine(
    global: &GlobalArgs,
    args: &EngineArgs,
    show_progress: bool,
    recall_across: bool,
) -> Result<(ChatEngine, IngestReport)> {
    let memory = global.open_manager().await?;
    let source = args.corpus();
    let (index, report) = {
        let global = global.clone();
        tokio::task::spawn_blocking(move || open_index(&global, &source, show_progress)).await??
    };
    let answerer = args.answerer(&index)?;
    let engine = ChatEngine::new(
        (*memory).clone(),
        index,
        answerer,
        EngineConfig {
            top_k: args.top_k.max(1),
            recall: RecallConfig {
                enabled: args.recall,
                across: args.recall_across.unwrap_or(recall_across),
                ..RecallConfig::default()
            },
            ..EngineConfig::default()
        },
    );
    Ok((engine, report))
}
