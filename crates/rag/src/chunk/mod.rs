//! Chunking: a document becomes retrievable pieces that follow its structure.
//!
//! Sections come from headings (markdown `#` and setext, reStructuredText underlined titles,
//! all-caps section lines of plain text such as man pages). A section that fits the target size is
//! one chunk; a longer one is packed sentence by sentence into chunks of about
//! [`ChunkOptions::target_chars`], each starting with the last sentence(s) of the previous one
//! (about [`ChunkOptions::overlap_chars`]) so no statement loses its context at a boundary.

mod structure;

use crate::document::{ChunkOptions, Document};
use crate::text::{hard_split, sentence_spans};
use structure::{parse, Block};

/// A retrievable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// Document path relative to the corpus root.
    pub path: String,
    /// Document title: its first top-level heading, else a title made from the file name.
    pub title: String,
    /// Heading path from the title down to the chunk's section: `Neural Networks > Layers`.
    pub heading: String,
    /// First line of the chunk's text in the document (1-based).
    pub line_start: u32,
    /// Last line of the chunk's text in the document (1-based, inclusive).
    pub line_end: u32,
    /// The chunk's text.
    pub text: String,
}

impl Chunk {
    /// The heading path below the title (`Layers` for `Neural Networks > Layers`); empty for
    /// text directly under the title.
    pub fn section(&self) -> &str {
        match self.heading.strip_prefix(self.title.as_str()) {
            Some("") => "",
            Some(rest) if rest.starts_with(" > ") => &rest[" > ".len()..],
            _ => &self.heading,
        }
    }
}

/// A piece of a section small enough to pack: a whole block, a sentence, or a code line.
struct Unit<'a> {
    text: &'a str,
    line_start: u32,
    line_end: u32,
    /// Index of the block it came from, to rebuild paragraph breaks.
    block: usize,
    /// Separator to put before it when it follows a unit of the same block.
    joiner: &'static str,
}

/// Splits a document into chunks that follow its headings.
///
/// Never fails: text without any recognisable structure becomes paragraph-packed chunks under
/// the document title.
pub fn chunk_document(document: &Document, options: &ChunkOptions) -> Vec<Chunk> {
    let target = options.target_chars.max(64);
    let parsed = parse(&document.path, &document.text);
    let mut chunks = Vec::new();
    for section in &parsed.sections {
        let heading = heading_path(&parsed.title, &section.headings);
        let units = units(&section.blocks, target);
        for (text, line_start, line_end) in pack(&units, target, options.overlap_chars) {
            chunks.push(Chunk {
                path: document.path.clone(),
                title: parsed.title.clone(),
                heading: heading.clone(),
                line_start,
                line_end,
                text,
            });
        }
    }
    chunks
}

/// `Title > Section > Subsection`; the title is prepended unless the path already starts with it.
fn heading_path(title: &str, headings: &[String]) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(headings.len() + 1);
    if headings.first().map(String::as_str) != Some(title) {
        parts.push(title);
    }
    parts.extend(headings.iter().map(String::as_str));
    parts.join(" > ")
}

/// Breaks blocks into packable units: whole blocks when they fit, else sentences (prose) or
/// lines (code), each hard-split if still longer than the target.
fn units<'a>(blocks: &[Block<'a>], target: usize) -> Vec<Unit<'a>> {
    let mut units = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        if block.text.len() <= target {
            units.push(Unit {
                text: block.text,
                line_start: block.line_start,
                line_end: block.line_end(),
                block: index,
                joiner: "",
            });
            continue;
        }
        let (spans, joiner) = if block.code {
            (line_spans(block.text), "\n")
        } else {
            (sentence_spans(block.text), " ")
        };
        for span in spans {
            for piece in hard_split(&block.text[span.clone()], target) {
                let start = span.start + piece.start;
                let end = span.start + piece.end;
                units.push(Unit {
                    text: &block.text[start..end],
                    line_start: block.line_at(start),
                    line_end: block.line_at(end.saturating_sub(1).max(start)),
                    block: index,
                    joiner,
                });
            }
        }
    }
    units
}

fn line_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.trim_end().len();
        if end > start {
            spans.push(start..end);
        }
        start += line.len();
    }
    spans
}

/// Packs units into `(text, line_start, line_end)` chunks of about `target` bytes with overlap.
fn pack(units: &[Unit<'_>], target: usize, overlap: usize) -> Vec<(String, u32, u32)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let mut end = start;
        let mut size = 0;
        while end < units.len() {
            let next = &units[end];
            let grown = size + next.text.len() + 2;
            if end > start && grown > target {
                break;
            }
            // Prefer ending at a block boundary once the chunk is reasonably full, rather than
            // cutting the next block after its first sentence.
            let starts_block = end > start && next.block != units[end - 1].block;
            if starts_block && size >= target / 2 && size + block_size(units, end) > target {
                break;
            }
            size = grown;
            end += 1;
        }
        chunks.push(render(&units[start..end]));
        if end >= units.len() {
            break;
        }
        start = overlap_start(units, start, end, overlap);
    }
    chunks
}

/// Size of the block that starts at unit `from`.
fn block_size(units: &[Unit<'_>], from: usize) -> usize {
    let block = units[from].block;
    units[from..]
        .iter()
        .take_while(|u| u.block == block)
        .map(|u| u.text.len() + 1)
        .sum()
}

/// Where the chunk after `units[start..end]` begins: trailing units within the overlap budget
/// are repeated. A single trailing sentence up to twice the budget is still repeated, so
/// typical sentences overlap; the next chunk always advances past `start`.
fn overlap_start(units: &[Unit<'_>], start: usize, end: usize, overlap: usize) -> usize {
    if overlap == 0 {
        return end;
    }
    let mut next = end;
    let mut carried = 0;
    while next > start + 1 {
        let len = units[next - 1].text.len();
        let fits = carried + len <= overlap || (carried == 0 && len <= overlap * 2);
        if !fits {
            break;
        }
        carried += len;
        next -= 1;
    }
    next
}

fn render(units: &[Unit<'_>]) -> (String, u32, u32) {
    let mut text = String::with_capacity(units.iter().map(|u| u.text.len() + 2).sum());
    for (i, unit) in units.iter().enumerate() {
        if i > 0 {
            text.push_str(if unit.block == units[i - 1].block {
                unit.joiner
            } else {
                "\n\n"
            });
        }
        text.push_str(unit.text);
    }
    let line_start = units.first().map_or(1, |u| u.line_start);
    let line_end = units.iter().map(|u| u.line_end).max().unwrap_or(line_start);
    (text, line_start, line_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str, text: &str) -> Document {
        Document {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn markdown_sections_keep_heading_path_and_lines() {
        let text = "# Neural Networks\n\nIntro text.\n\n## Layers\n\nInput layer.\n\n### Hidden\n\nHidden layers sit between.\n";
        let chunks = chunk_document(&doc("nn.md", text), &ChunkOptions::default());
        let summary: Vec<(&str, u32, u32, &str)> = chunks
            .iter()
            .map(|c| {
                (
                    c.heading.as_str(),
                    c.line_start,
                    c.line_end,
                    c.text.as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Neural Networks", 3, 3, "Intro text."),
                ("Neural Networks > Layers", 7, 7, "Input layer."),
                (
                    "Neural Networks > Layers > Hidden",
                    11,
                    11,
                    "Hidden layers sit between."
                ),
            ]
        );
        assert!(chunks.iter().all(|c| c.title == "Neural Networks"));
        assert_eq!(chunks[0].section(), "");
        assert_eq!(chunks[2].section(), "Layers > Hidden");
    }

    #[test]
    fn long_sections_are_split_with_overlap() {
        let sentence =
            |i: usize| format!("Sentence number {i} talks about gradient descent steps.");
        let body: Vec<String> = (0..60).map(sentence).collect();
        let text = format!("# Title\n\n## Long\n\n{}\n", body.join(" "));
        let options = ChunkOptions::default();
        let chunks = chunk_document(&doc("long.md", &text), &options);
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(
                chunk.text.len() <= options.target_chars + 64,
                "{}",
                chunk.text.len()
            );
            assert_eq!(chunk.heading, "Title > Long");
            assert_eq!((chunk.line_start, chunk.line_end), (5, 5));
        }
        for pair in chunks.windows(2) {
            let first_sentence = pair[1].text.split(". ").next().unwrap_or_default();
            assert!(pair[0].text.contains(first_sentence), "no overlap");
        }
        let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
        for i in 0..60 {
            assert!(all.contains(&sentence(i)), "lost sentence {i}");
        }
    }

    #[test]
    fn paragraphs_map_to_their_own_lines_when_split() {
        let para = |n: usize| format!("Paragraph {n} {}", "word ".repeat(120).trim_end());
        let text = format!("# T\n\n{}\n\n{}\n\n{}\n", para(1), para(2), para(3));
        let chunks = chunk_document(&doc("p.md", &text), &ChunkOptions::default());
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks
                .iter()
                .map(|c| (c.line_start, c.line_end))
                .collect::<Vec<_>>(),
            vec![(3, 3), (5, 5), (7, 7)]
        );
    }

    #[test]
    fn plain_text_without_structure_gets_a_title_from_the_file_name() {
        let chunks = chunk_document(
            &doc("notes/release_notes.txt", "just some words\nand more"),
            &ChunkOptions::default(),
        );
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].title, "Release notes");
        assert_eq!(chunks[0].heading, "Release notes");
        assert_eq!((chunks[0].line_start, chunks[0].line_end), (1, 2));
    }

    #[test]
    fn arbitrary_text_never_breaks_the_chunker() {
        // Deterministic pseudo-random documents built from the characters the parsers react to.
        const ALPHABET: &[&str] = &[
            "#", "# ", "## ", "=", "===\n", "---\n", "-", "```\n", "~~~", "\n", "\n\n", "\r\n",
            ".", ". ", "? ", "A", "b", "é", "✓", " ", "   ", "1. ", "- ", ":", "WORD", "e.g. ",
        ];
        let mut state: u64 = 1;
        let options = ChunkOptions {
            target_chars: 80,
            overlap_chars: 20,
        };
        for round in 0..500 {
            let mut text = String::new();
            for _ in 0..(round % 97) * 3 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                text.push_str(ALPHABET[(state >> 33) as usize % ALPHABET.len()]);
            }
            let lines = text.lines().count().max(1) as u32;
            for path in ["x.md", "x.rst", "x.txt"] {
                for chunk in chunk_document(&doc(path, &text), &options) {
                    assert!(!chunk.text.trim().is_empty(), "{text:?}");
                    assert!(chunk.line_start >= 1 && chunk.line_start <= chunk.line_end);
                    assert!(chunk.line_end <= lines + 1, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn one_huge_line_is_bounded() {
        let text = "x".repeat(50_000);
        let chunks = chunk_document(&doc("blob.txt", &text), &ChunkOptions::default());
        assert!(chunks.len() >= 50);
        assert!(chunks.iter().all(|c| c.text.len() <= 1000));
    }
}
