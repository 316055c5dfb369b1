//! Reading a corpus: folders walked, files turned into text (as is, or extracted from HTML and
//! PDF) and checked, and every file left out recorded with its reason.

use std::fs;
use std::io::Read;
use std::path::Path;

use super::{html, pdf, IngestOptions, LoadedCorpus, SkipReason, SkippedFile};
use crate::document::Document;
use crate::error::{RagError, Result};

/// Checks that a documents folder exists and is a folder.
///
/// # Errors
/// [`RagError::InvalidInput`] saying which of the two it is not.
pub(crate) fn check_folder(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(RagError::InvalidInput(format!(
            "documents folder {} is not a folder",
            dir.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(RagError::InvalidInput(format!(
            "documents folder {} does not exist",
            dir.display()
        ))),
        Err(e) => Err(RagError::io(dir, e)),
    }
}

/// How a file is turned into text, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Html,
    Pdf,
}

impl Kind {
    fn of(path: &str) -> Kind {
        let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref() {
            Some("html" | "htm" | "xhtml") => Kind::Html,
            Some("pdf") => Kind::Pdf,
            _ => Kind::Text,
        }
    }
}

pub(super) fn check_documents(
    documents: Vec<Document>,
    options: &IngestOptions,
    corpus: &mut LoadedCorpus,
) {
    for mut document in documents {
        let checked = check_text(document.text.as_bytes(), options).and_then(|()| {
            if Kind::of(&document.path) == Kind::Html {
                document.text = html::to_markdown(&document.text)?;
            }
            Ok(())
        });
        match checked {
            Ok(()) => corpus.documents.push(document),
            Err(reason) => skip(corpus, document.path, reason),
        }
    }
}

pub(super) fn walk(
    root: &Path,
    entries: fs::ReadDir,
    extensions: &[String],
    options: &IngestOptions,
    corpus: &mut LoadedCorpus,
) {
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(%error, "skipping an unlistable folder entry");
                continue;
            }
        };
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue; // .git, editor state and other hidden files are not documents.
        }
        let relative = relative_path(root, &path);
        // Symlinked folders are not followed (cycles); symlinked files are.
        let Ok(file_type) = entry.file_type() else {
            skip(
                corpus,
                relative,
                SkipReason::Unreadable("cannot stat".into()),
            );
            continue;
        };
        if file_type.is_dir() {
            match fs::read_dir(&path) {
                Ok(children) => walk(root, children, extensions, options, corpus),
                Err(error) => skip(corpus, relative, SkipReason::Unreadable(error.to_string())),
            }
            continue;
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if path.is_dir() {
            continue;
        }
        if !extensions.contains(&extension) {
            skip(corpus, relative, SkipReason::Unsupported { extension });
            continue;
        }
        match read_document(&path, Kind::of(&relative), options) {
            Ok(text) => corpus.documents.push(Document {
                path: relative,
                text,
            }),
            Err(reason) => skip(corpus, relative, reason),
        }
    }
}

fn skip(corpus: &mut LoadedCorpus, path: String, reason: SkipReason) {
    tracing::debug!(%path, %reason, "skipping file");
    corpus.skipped.push(SkippedFile { path, reason });
}

/// Reads one file and turns it into usable text: as is, or extracted from HTML or PDF.
fn read_document(
    path: &Path,
    kind: Kind,
    options: &IngestOptions,
) -> std::result::Result<String, SkipReason> {
    let unreadable = |e: std::io::Error| SkipReason::Unreadable(e.to_string());
    let limit = match kind {
        Kind::Pdf => options.max_pdf_bytes,
        Kind::Text | Kind::Html => options.max_file_bytes,
    };
    let file = fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > limit {
        return Err(SkipReason::TooLarge { bytes: size, limit });
    }
    // Read at most one byte past the limit: the file may have grown since the metadata call.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(SkipReason::TooLarge {
            bytes: bytes.len() as u64,
            limit,
        });
    }
    if kind == Kind::Pdf {
        let text = pdf::to_markdown(bytes)?;
        check_text(text.as_bytes(), options)?;
        return Ok(text);
    }
    check_text(&bytes, options)?;
    let mut text = String::from_utf8(bytes).map_err(|e| SkipReason::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..'\u{feff}'.len_utf8());
    }
    match kind {
        Kind::Html => html::to_markdown(&text),
        Kind::Text | Kind::Pdf => Ok(text),
    }
}

/// The checks every document passes, whatever its origin: size, NUL bytes, UTF-8, non-blank.
pub(super) fn check_text(
    bytes: &[u8],
    options: &IngestOptions,
) -> std::result::Result<(), SkipReason> {
    if bytes.len() as u64 > options.max_file_bytes {
        return Err(SkipReason::TooLarge {
            bytes: bytes.len() as u64,
            limit: options.max_file_bytes,
        });
    }
    if bytes.contains(&0) {
        return Err(SkipReason::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|e| SkipReason::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(SkipReason::Empty);
    }
    Ok(())
}

fn relative_path(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
