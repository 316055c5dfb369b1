//! ragchat-rag: documents -> chunks -> BM25 index -> history-aware retrieval -> cited answers.
//!
//! - `corpus`    reading a folder (text, HTML, PDF), the bundled articles or given documents; skip reasons
//! - `document`  a document and the chunk sizes: what `corpus` hands to `chunk`
//! - `chunk`     splitting documents along their headings into overlapping, line-numbered chunks
//! - `text`      the English analyzer (stemming, stop words) and sentence splitting
//! - `asking`    words that shape the asking ("how long"), left out of query terms
//! - `families`  verbs that ask for the same thing ("prevent", "avoid", "reduce")
//! - `spelling`  one spelling for British and American words, inside the analyzer
//! - `index`     the tantivy index under the data dir, rebuilt only when the corpus changes
//! - `catalog`   by document: the indexed documents, the passage a citation points at
//! - `acts`      conversation acts: greetings, thanks, goodbyes, "what can you do?"
//! - `replies`   fixed replies ("nothing found") that retrieval recognises in the history
//! - `retrieve`  follow-up-aware query planning and search; the crate's own `HistoryTurn`
//! - `answer`    the `Answerer` trait, the offline extractive answerer (and the example
//!   questions it vets), the OpenAI-compatible one
//! - `error`     `RagError` and `Result`
//!
//! Shared with the other ragchat crates through `ragchat-core`: `Role`, `SourceRef` (the citation
//! as stored) and the token estimate. Modules depend one way, in about the order listed; the
//! module-cycles check keeps it so.
//!
//! A chat turn with this crate:
//!
//! ```no_run
//! # async fn turn() -> ragchat_rag::Result<()> {
//! use ragchat_rag::*;
//! let (index, report) = Index::open_or_build(
//!     std::path::Path::new("/tmp/ragchat"),
//!     &CorpusSource::Bundled,
//!     &IngestOptions::default(),
//!     &|_progress| {},
//! )?;
//! let history = vec![HistoryTurn::user("What is machine learning?")];
//! let retrieval = index.retriever().search("How does it learn?", &history, 3)?;
//! let question = "How does it learn?".to_owned();
//! let request = AnswerRequest { question, history, hits: retrieval.hits, recalled: Vec::new() };
//! let answer = ExtractiveAnswerer::new().answer(&request, &mut |delta| print!("{delta}")).await?;
//! # Ok(()) }
//! ```

mod acts;
mod answer;
mod asking;
mod catalog;
mod chunk;
mod corpus;
mod document;
mod error;
mod families;
mod index;
mod recall;
mod replies;
mod retrieve;
mod spelling;
mod text;

pub use acts::{conversation_act, ConversationAct};
pub use answer::{
    build_messages, example_questions, Answer, AnswerOptions, AnswerRequest, Answerer,
    CharEstimate, ExtractiveAnswerer, ExtractiveConfig, FallbackAnswerer, OpenAiAnswerer,
    OpenAiConfig, PromptMessage, Source, TokenCounter, NOTHING_FOUND_REPLY, NOTHING_RECALLED_REPLY,
    NO_CONVERSATION_REPLY, SYSTEM_PROMPT,
};
pub use catalog::{CitedPart, DocumentInfo, Passage};
pub use chunk::{chunk_document, Chunk};
pub use corpus::{
    bundled_corpus, human_bytes, load, CorpusSource, IngestOptions, IngestReport, LoadedCorpus,
    SkipReason, SkippedFile, DEFAULT_EXTENSIONS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PDF_BYTES,
    PDF_THREAD_NAME,
};
pub use document::{ChunkOptions, Document, DEFAULT_OVERLAP_CHARS, DEFAULT_TARGET_CHARS};
pub use error::{RagError, Result};
pub use index::{Index, IngestProgress};
pub use ragchat_core::{ConversationRef, Role, SourceRef};
pub use recall::{asks_about_conversation, recall_query, AskedOf, RecalledTurn};
pub use retrieve::{
    classify, is_topic_message, plan_query, refers_back, HistoryTurn, Hit, MessageKind, QueryPlan,
    Retrieval, Retriever, RetrieverConfig, WeightedTerm, MAX_HITS,
};
