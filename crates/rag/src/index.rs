//! The on-disk BM25 index of a corpus, rebuilt only when the corpus changes.
//!
//! Layout under the caller's data dir:
//!
//! ```text
//! <data_dir>/index/<corpus id>/manifest.json   content hashes of the indexed files + generation
//! <data_dir>/index/<corpus id>/gen-<n>/        the tantivy index of that generation
//! ```
//!
//! `<corpus id>` is a hash of the corpus identity (`bundled`, or the canonical folder path). A
//! rebuild writes a new generation next to the old one and switches the manifest to it with an
//! atomic rename, so a crash mid-build leaves the previous index usable and a reader in another
//! process keeps working on the files it has open.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::{IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use crate::chunk::{chunk_document, Chunk};
use crate::corpus::{load, CorpusSource, IngestOptions, IngestReport};
use crate::document::{ChunkOptions, Document};
use crate::error::{RagError, Result};
use crate::text::{analyze, english_analyzer, ANALYZER_NAME};

/// Bump when the schema, the analyzer or the chunker changes what an index contains.
/// 2: the path is indexed as one raw term (a document's passages found by path).
const INDEX_FORMAT: u32 = 2;
const MANIFEST: &str = "manifest.json";
/// Indexing memory per writer thread (tantivy's minimum is 15 MB).
const WRITER_HEAP_PER_THREAD: usize = 64 * 1024 * 1024;

/// Progress of [`Index::open_or_build`], for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestProgress {
    /// The corpus was read; `files` documents of `bytes` total are usable, `skipped` are not.
    Scanned {
        /// Usable documents.
        files: usize,
        /// Their total size.
        bytes: u64,
        /// Files left out.
        skipped: usize,
    },
    /// The corpus is unchanged; the existing index is opened.
    Reusing,
    /// One more document was chunked and added.
    Indexed {
        /// Documents added so far.
        files_done: usize,
        /// Documents to add.
        files_total: usize,
        /// Bytes added so far.
        bytes_done: u64,
        /// Bytes to add.
        bytes_total: u64,
    },
    /// All documents were added; the index is being written to disk.
    Committing,
}

/// The tantivy fields of a chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// Indexed whole (one raw term per document path), so a document's chunks are found by
    /// path without scanning the index: "tell me more", cited passages, the document list.
    pub path: Field,
    pub title: Field,
    /// The full heading path, stored for display.
    pub heading: Field,
    /// The words of the section headings below the title that are not title words, indexed:
    /// the title has its own field and boost, and a heading that restates the article's subject
    /// ("When to use machine learning" in "What Is Machine Learning?") is about "when to use".
    pub section: Field,
    pub text: Field,
    pub line_start: Field,
    pub line_end: Field,
}

impl Fields {
    fn schema() -> (Schema, Fields) {
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions);
        let indexed = TextOptions::default().set_indexing_options(indexing);
        let mut builder = Schema::builder();
        let fields = Fields {
            path: builder.add_text_field("path", STRING | STORED),
            title: builder.add_text_field("title", indexed.clone().set_stored()),
            heading: builder.add_text_field("heading", STORED),
            section: builder.add_text_field("section", indexed.clone()),
            text: builder.add_text_field("text", indexed.set_stored()),
            // Fast: a document's passages are put in order without loading them.
            line_start: builder.add_u64_field("line_start", STORED | FAST),
            line_end: builder.add_u64_field("line_end", STORED),
        };
        (builder.build(), fields)
    }
}

/// A searchable index of one corpus. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Index {
    inner: Arc<Inner>,
}

struct Inner {
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    chunks: usize,
}

/// What was indexed: compared on open to decide whether the index can be reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    source: String,
    chunk: ChunkOptions,
    files: Vec<ManifestFile>,
    chunks: usize,
    generation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ManifestFile {
    path: String,
    sha256: String,
    bytes: u64,
}

impl Manifest {
    fn describes_same_index(&self, other: &Manifest) -> bool {
        self.format == other.format
            && self.source == other.source
            && self.chunk == other.chunk
            && self.files == other.files
    }
}

impl Index {
    /// Opens the index of `source` under `data_dir`, building it first when the corpus changed.
    ///
    /// Reads the whole corpus and hashes every document (SHA-256). When the hashes, the chunk
    /// options and the index format match the manifest of the existing index, that index is
    /// opened and the report says `reused: true`; otherwise every document is chunked and
    /// indexed into a new generation. `progress` is called from this thread as work advances.
    ///
    /// # Errors
    /// [`RagError::InvalidInput`] for a corpus folder that does not exist or is not a folder
    /// (the message says which), [`RagError::Io`] when
    /// the data dir is not writable, [`RagError::Index`] when tantivy fails (retryable when
    /// another process holds the index's writer lock).
    pub fn open_or_build(
        data_dir: &Path,
        source: &CorpusSource,
        options: &IngestOptions,
        progress: &dyn Fn(IngestProgress),
    ) -> Result<(Index, IngestReport)> {
        let started = Instant::now();
        if let CorpusSource::Dir(dir) = source {
            crate::corpus::check_folder(dir)?;
        }
        let identity = source.identity()?;
        let root = data_dir
            .join("index")
            .join(&sha256_hex(identity.as_bytes())[..16]);
        fs::create_dir_all(&root).map_err(|e| RagError::io(&root, e))?;

        let corpus = load(source, options)?;
        let bytes: u64 = corpus.documents.iter().map(|d| d.text.len() as u64).sum();
        progress(IngestProgress::Scanned {
            files: corpus.documents.len(),
            bytes,
            skipped: corpus.skipped.len(),
        });
        let mut wanted = Manifest {
            format: INDEX_FORMAT,
            source: identity,
            chunk: options.chunk,
            files: corpus
                .documents
                .iter()
                .map(|d| ManifestFile {
                    path: d.path.clone(),
                    sha256: sha256_hex(d.text.as_bytes()),
                    bytes: d.text.len() as u64,
                })
                .collect(),
            chunks: 0,
            generation: String::new(),
        };
        let mut report = IngestReport {
            files: corpus.documents.len(),
            bytes,
            skipped: corpus.skipped,
            ..IngestReport::default()
        };

        let existing = read_manifest(&root);
        let reusable =
            existing.filter(|m| !options.force_rebuild && m.describes_same_index(&wanted));
        let index = match reusable.map(|m| Index::open(&root, &m)) {
            Some(Ok(index)) => {
                progress(IngestProgress::Reusing);
                report.reused = true;
                index
            }
            other => {
                if let Some(Err(error)) = other {
                    tracing::warn!(%error, "existing index unusable; rebuilding");
                }
                wanted.generation = new_generation_name();
                wanted.chunks = build(
                    &root,
                    &wanted.generation,
                    &corpus.documents,
                    options,
                    progress,
                )?;
                write_manifest(&root, &wanted)?;
                remove_other_generations(&root, &wanted.generation);
                Index::open(&root, &wanted)?
            }
        };
        report.chunks = index.inner.chunks;
        report.elapsed = started.elapsed();
        tracing::info!(
            files = report.files,
            chunks = report.chunks,
            skipped = report.skipped.len(),
            reused = report.reused,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "index ready"
        );
        Ok((index, report))
    }

    fn open(root: &Path, manifest: &Manifest) -> Result<Index> {
        let dir = root.join(&manifest.generation);
        if manifest.generation.is_empty() || !dir.is_dir() {
            return Err(RagError::Index {
                message: format!("index generation {} is missing", dir.display()),
                retryable: false,
            });
        }
        let index = tantivy::Index::open_in_dir(&dir)?;
        index
            .tokenizers()
            .register(ANALYZER_NAME, english_analyzer());
        let (expected, fields) = Fields::schema();
        if index.schema() != expected {
            return Err(RagError::Index {
                message: "index schema differs from this version's".into(),
                retryable: false,
            });
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let chunks = usize::try_from(reader.searcher().num_docs()).unwrap_or(usize::MAX);
        Ok(Index {
            inner: Arc::new(Inner {
                reader,
                fields,
                dir,
                chunks,
            }),
        })
    }

    /// Number of chunks in the index.
    pub fn num_chunks(&self) -> usize {
        self.inner.chunks
    }

    /// The folder holding this generation of the index.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub(crate) fn searcher(&self) -> tantivy::Searcher {
        self.inner.reader.searcher()
    }

    pub(crate) fn fields(&self) -> Fields {
        self.inner.fields
    }

    /// How many chunks of `searcher` contain the analyzed `term`; 0 when unreadable (an
    /// unreadable statistic only costs ranking quality).
    pub(crate) fn doc_freq_in(&self, searcher: &tantivy::Searcher, term: &str) -> u64 {
        let term = tantivy::Term::from_field_text(self.inner.fields.text, term);
        searcher.doc_freq(&term).unwrap_or(0)
    }
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.inner.dir)
            .field("chunks", &self.inner.chunks)
            .finish()
    }
}

/// Chunks and indexes `documents` into `<root>/<generation>`; returns the number of chunks.
fn build(
    root: &Path,
    generation: &str,
    documents: &[Document],
    options: &IngestOptions,
    progress: &dyn Fn(IngestProgress),
) -> Result<usize> {
    let dir = root.join(generation);
    fs::create_dir_all(&dir).map_err(|e| RagError::io(&dir, e))?;
    let (schema, fields) = Fields::schema();
    let index = tantivy::Index::create_in_dir(&dir, schema)?;
    index
        .tokenizers()
        .register(ANALYZER_NAME, english_analyzer());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut writer: IndexWriter =
        index.writer_with_num_threads(threads, threads * WRITER_HEAP_PER_THREAD)?;

    let bytes_total = documents.iter().map(|d| d.text.len() as u64).sum();
    let mut bytes_done = 0;
    let mut chunks = 0;
    for (done, document) in documents.iter().enumerate() {
        for chunk in chunk_document(document, &options.chunk) {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.path, &chunk.path);
            doc.add_text(fields.title, &chunk.title);
            doc.add_text(fields.heading, &chunk.heading);
            doc.add_text(fields.section, section_beyond_title(&chunk));
            doc.add_text(fields.text, &chunk.text);
            doc.add_u64(fields.line_start, u64::from(chunk.line_start));
            doc.add_u64(fields.line_end, u64::from(chunk.line_end));
            writer.add_document(doc)?;
            chunks += 1;
        }
        bytes_done += document.text.len() as u64;
        progress(IngestProgress::Indexed {
            files_done: done + 1,
            files_total: documents.len(),
            bytes_done,
            bytes_total,
        });
    }
    progress(IngestProgress::Committing);
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok(chunks)
}

/// The words of the chunk's section path whose terms are not in the title.
fn section_beyond_title(chunk: &Chunk) -> String {
    let title: HashSet<String> = analyze(&chunk.title).into_iter().collect();
    chunk
        .section()
        .split_whitespace()
        .filter(|word| analyze(word).iter().all(|term| !title.contains(term)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_manifest(root: &Path) -> Option<Manifest> {
    let path = root.join(MANIFEST);
    let bytes = fs::read(&path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(manifest) => Some(manifest),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring unreadable index manifest");
            None
        }
    }
}

/// Writes the manifest through a temporary file and a rename, so it is never half-written.
fn write_manifest(root: &Path, manifest: &Manifest) -> Result<()> {
    let path = root.join(MANIFEST);
    let temporary = root.join(format!("{MANIFEST}.{}.tmp", std::process::id()));
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| RagError::Index {
        message: format!("cannot encode manifest: {e}"),
        retryable: false,
    })?;
    fs::write(&temporary, json).map_err(|e| RagError::io(&temporary, e))?;
    fs::rename(&temporary, &path).map_err(|e| RagError::io(&path, e))
}

/// Best effort: old generations are garbage once the manifest points elsewhere.
fn remove_other_generations(root: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("gen-") && name != keep {
            if let Err(error) = fs::remove_dir_all(entry.path()) {
                tracing::debug!(%error, generation = %name, "cannot remove old index generation");
            }
        }
    }
}

fn new_generation_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("gen-{nanos}-{}", std::process::id())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_comparison_ignores_generation_and_counts() {
        let file = ManifestFile {
            path: "a.md".into(),
            sha256: sha256_hex(b"a"),
            bytes: 1,
        };
        let a = Manifest {
            format: INDEX_FORMAT,
            source: "bundled".into(),
            chunk: ChunkOptions::default(),
            files: vec![file.clone()],
            chunks: 3,
            generation: "gen-1".into(),
        };
        let mut b = a.clone();
        b.generation = "gen-2".into();
        b.chunks = 0;
        assert!(a.describes_same_index(&b));
        b.files[0].sha256 = sha256_hex(b"b");
        assert!(!a.describes_same_index(&b));
        let mut c = a.clone();
        c.chunk.target_chars = 500;
        assert!(!a.describes_same_index(&c));
    }

    #[test]
    fn section_field_leaves_out_title_words() {
        let chunk = Chunk {
            path: "ml.md".into(),
            title: "What Is Machine Learning?".into(),
            heading: "What Is Machine Learning? > When should you use machine learning?".into(),
            line_start: 1,
            line_end: 1,
            text: String::new(),
        };
        assert_eq!(section_beyond_title(&chunk), "When should you use");
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
