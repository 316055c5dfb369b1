//! What the corpus hands the chunker: a document, and the chunk sizes ingestion asks for.
//!
//! A leaf: `corpus` produces these and `chunk` consumes them, and neither imports the other.

/// Default target size of a chunk, in bytes of text.
pub const DEFAULT_TARGET_CHARS: usize = 1000;
/// Default overlap between consecutive chunks of one section, in bytes of text.
pub const DEFAULT_OVERLAP_CHARS: usize = 150;

/// One document of a corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Path relative to the corpus root, `/`-separated (`guides/setup.md`).
    pub path: String,
    /// The full UTF-8 text.
    pub text: String,
}

/// Chunk sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkOptions {
    /// A section longer than this is split; chunks are packed up to about this size.
    pub target_chars: usize,
    /// How much trailing text of a chunk is repeated at the start of the next.
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            target_chars: DEFAULT_TARGET_CHARS,
            overlap_chars: DEFAULT_OVERLAP_CHARS,
        }
    }
}
