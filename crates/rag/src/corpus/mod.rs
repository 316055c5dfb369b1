//! Corpus loading: a folder of documents, or the corpus embedded in the binary.
//!
//! Text files (`.md`, `.markdown`, `.txt`, `.rst`) are read as they are; HTML pages (`.html`,
//! `.htm`) and PDFs (`.pdf`) are turned into markdown first (`html`, `pdf`, written through
//! `markup`), so their headings, and a PDF's page numbers, end up in citations.
//!
//! Loading never fails because of one bad file: every file of the folder that is not indexed is
//! listed with its reason in the [`IngestReport`]: an unsupported type, binary, empty,
//! oversized, non-UTF-8 or unreadable, a PDF without a text layer or one that cannot be parsed,
//! an HTML page without main text. Only hidden files and folders (`.git`) are passed over
//! without a word.

mod html;
mod markup;
mod pdf;
mod read;

pub use pdf::PDF_THREAD_NAME;
pub(crate) use read::check_folder;
use read::{check_documents, walk};

use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::document::{ChunkOptions, Document};
use crate::error::{RagError, Result};

/// File extensions read from a corpus folder by default (compared case-insensitively).
pub const DEFAULT_EXTENSIONS: &[&str] = &["md", "markdown", "txt", "rst", "html", "htm", "pdf"];

/// Files larger than this are skipped by default (5 MiB); for PDFs, the limit of the text
/// extracted from them.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

/// PDF files larger than this are skipped by default (64 MiB): PDFs carry fonts and images,
/// so their files are much larger than their text.
pub const DEFAULT_MAX_PDF_BYTES: u64 = 64 * 1024 * 1024;

/// Where a corpus comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusSource {
    /// A folder on disk, read recursively.
    Dir(PathBuf),
    /// The sample articles compiled into this crate (see [`bundled_corpus`]).
    Bundled,
    /// Documents supplied by the caller (embedded with `include_str!`, generated, fetched).
    Documents {
        /// A stable name for this set: it selects the index folder, so two sets need two names.
        name: String,
        /// The documents; paths should be relative and `/`-separated.
        documents: Vec<Document>,
    },
}

impl CorpusSource {
    /// A stable identity for this corpus: `bundled`, `documents:` plus the name, or `dir:` plus
    /// the canonical folder path.
    ///
    /// # Errors
    /// [`RagError::Io`] when the folder cannot be resolved (it does not exist).
    pub fn identity(&self) -> Result<String> {
        match self {
            CorpusSource::Bundled => Ok("bundled".to_owned()),
            CorpusSource::Documents { name, .. } => Ok(format!("documents:{name}")),
            CorpusSource::Dir(dir) => {
                let canonical = fs::canonicalize(dir).map_err(|e| RagError::io(dir, e))?;
                Ok(format!("dir:{}", canonical.display()))
            }
        }
    }
}

impl fmt::Display for CorpusSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorpusSource::Dir(dir) => write!(f, "{}", dir.display()),
            CorpusSource::Bundled => f.write_str("bundled corpus"),
            CorpusSource::Documents { name, .. } => write!(f, "documents {name:?}"),
        }
    }
}

/// How to read and chunk a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOptions {
    /// Files larger than this many bytes are skipped (default [`DEFAULT_MAX_FILE_BYTES`]); for
    /// PDFs this limits the extracted text.
    pub max_file_bytes: u64,
    /// PDF files larger than this many bytes are skipped (default [`DEFAULT_MAX_PDF_BYTES`]).
    pub max_pdf_bytes: u64,
    /// Extensions (without dot, lowercase) of the files to read (default [`DEFAULT_EXTENSIONS`]).
    pub extensions: Vec<String>,
    /// Chunk sizes.
    pub chunk: ChunkOptions,
    /// Rebuild the index even when the corpus did not change.
    pub force_rebuild: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_pdf_bytes: DEFAULT_MAX_PDF_BYTES,
            extensions: DEFAULT_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            chunk: ChunkOptions::default(),
            force_rebuild: false,
        }
    }
}

/// Why a file was left out of the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// It contains NUL bytes.
    Binary,
    /// It has no text (zero bytes or only whitespace).
    Empty,
    /// It is larger than [`IngestOptions::max_file_bytes`].
    TooLarge {
        /// Size of the file.
        bytes: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Its bytes are not valid UTF-8.
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// It could not be read (permissions, vanished, I/O error).
    Unreadable(String),
    /// Its type is not one that is read ([`IngestOptions::extensions`]).
    Unsupported {
        /// Its extension, lowercase, without the dot; empty when it has none.
        extension: String,
    },
    /// A PDF whose pages carry no text (scanned images, drawings): there is nothing to index
    /// without OCR.
    NoTextLayer {
        /// Pages in the file.
        pages: usize,
    },
    /// A file that could not be parsed as its type (a damaged or password-protected PDF).
    Unparsable(String),
    /// An HTML page with no text outside its navigation, scripts and other chrome.
    NoMainText,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Binary => f.write_str("binary file (contains NUL bytes)"),
            SkipReason::Empty => f.write_str("empty file"),
            SkipReason::TooLarge { bytes, limit } => write!(
                f,
                "too large ({} > limit {})",
                human_bytes(*bytes),
                human_bytes(*limit)
            ),
            SkipReason::NotUtf8 { offset } => {
                write!(f, "not valid UTF-8 (first bad byte at offset {offset})")
            }
            SkipReason::Unreadable(cause) => write!(f, "unreadable: {cause}"),
            SkipReason::Unsupported { extension } if extension.is_empty() => {
                f.write_str("not a supported document type (no extension)")
            }
            SkipReason::Unsupported { extension } => {
                write!(f, "not a supported document type (.{extension})")
            }
            SkipReason::NoTextLayer { pages } => write!(
                f,
                "PDF without a text layer ({pages} page(s) of images or drawings): run OCR on it to index it"
            ),
            SkipReason::Unparsable(cause) => write!(f, "cannot be parsed: {cause}"),
            SkipReason::NoMainText => {
                f.write_str("HTML page without main text (only navigation, scripts or markup)")
            }
        }
    }
}

/// A file that was not indexed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path relative to the corpus root, `/`-separated.
    pub path: String,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// What an ingest did: counts, skipped files, time, and whether an existing index was reused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Documents indexed.
    pub files: usize,
    /// Chunks in the index.
    pub chunks: usize,
    /// Files left out, with the reason.
    pub skipped: Vec<SkippedFile>,
    /// Bytes of text indexed.
    pub bytes: u64,
    /// Wall time of the whole open-or-build.
    pub elapsed: Duration,
    /// True when the corpus was unchanged and the existing index was opened as is.
    pub reused: bool,
}

/// The documents of a corpus plus the files that were skipped while reading it.
#[derive(Debug, Clone, Default)]
pub struct LoadedCorpus {
    /// Readable documents, sorted by path.
    pub documents: Vec<Document>,
    /// Files left out, sorted by path.
    pub skipped: Vec<SkippedFile>,
}

/// The sample articles of the repository's `corpus/` folder, embedded at compile time.
///
/// Sorted by path. Empty when the crate was built without that folder.
pub fn bundled_corpus() -> Vec<Document> {
    const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_corpus.rs"));
    BUNDLED
        .iter()
        .map(|(path, text)| Document {
            path: (*path).to_owned(),
            text: (*text).to_owned(),
        })
        .collect()
}

/// Reads the documents of `source`.
///
/// Documents of [`CorpusSource::Bundled`] and [`CorpusSource::Documents`] get the same checks as
/// files (an empty or oversized one is skipped).
///
/// # Errors
/// [`RagError::InvalidInput`] when a `Dir` source does not exist or is not a folder;
/// [`RagError::Io`] when the root folder itself cannot be listed. Problems with single files or
/// subfolders are reported in [`LoadedCorpus::skipped`] instead.
pub fn load(source: &CorpusSource, options: &IngestOptions) -> Result<LoadedCorpus> {
    let mut corpus = LoadedCorpus::default();
    match source {
        CorpusSource::Bundled => check_documents(bundled_corpus(), options, &mut corpus),
        CorpusSource::Documents { documents, .. } => {
            check_documents(documents.clone(), options, &mut corpus);
        }
        CorpusSource::Dir(root) => {
            check_folder(root)?;
            let extensions: Vec<String> = options
                .extensions
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect();
            let entries = fs::read_dir(root).map_err(|e| RagError::io(root, e))?;
            walk(root, entries, &extensions, options, &mut corpus);
        }
    }
    corpus.documents.sort_by(|a, b| a.path.cmp(&b.path));
    corpus.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(corpus)
}

/// Formats a byte count for people: `512 B`, `4.2 KiB`, `10.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_corpus_is_embedded_and_sorted() {
        let documents = bundled_corpus();
        assert!(documents
            .iter()
            .any(|d| d.path == "what-is-machine-learning.md" && d.text.contains("# What Is")));
        let mut paths: Vec<&str> = documents.iter().map(|d| d.path.as_str()).collect();
        let unsorted = paths.clone();
        paths.sort();
        assert_eq!(paths, unsorted);
    }

    #[test]
    fn caller_documents_are_checked_like_files() {
        let source = CorpusSource::Documents {
            name: "faq".into(),
            documents: vec![
                Document {
                    path: "b.md".into(),
                    text: "# B\n\nText.".into(),
                },
                Document {
                    path: "a.md".into(),
                    text: "  ".into(),
                },
            ],
        };
        assert_eq!(source.identity().ok().as_deref(), Some("documents:faq"));
        let loaded = load(&source, &IngestOptions::default()).expect("loads");
        assert_eq!(loaded.documents.len(), 1);
        assert_eq!(
            loaded.skipped,
            vec![SkippedFile {
                path: "a.md".into(),
                reason: SkipReason::Empty
            }]
        );
    }

    #[test]
    fn check_text_names_the_problem() {
        use read::check_text;
        let options = IngestOptions::default();
        assert_eq!(check_text(b"a\0b", &options), Err(SkipReason::Binary));
        assert_eq!(check_text(b" \n\t", &options), Err(SkipReason::Empty));
        assert_eq!(
            check_text(b"ok \xff", &options),
            Err(SkipReason::NotUtf8 { offset: 3 })
        );
        assert_eq!(check_text("fine ✓".as_bytes(), &options), Ok(()));
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.0 MiB");
    }
}
