//! What the index holds, by document: the list of indexed documents, and the passage a
//! citation points at.
//!
//! An answer cites a document path and a line range: the union of the overlapping chunks
//! retrieval merged into one hit. Both lookups here go through the path, which the index
//! keeps as one raw term per document, so they read only that document's chunks and never
//! scan the index. [`Index::passage`] merges the chunks inside the cited range back into
//! the passage the answer was drawn from, the same way retrieval merged them.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, TantivyDocument, Term};

use crate::error::{RagError, Result};
use crate::index::Index;
use crate::retrieve::{merge_overlapping, passages_of, Hit};

/// One indexed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentInfo {
    /// Path relative to the corpus root.
    pub path: String,
    /// Its title (first top-level heading, else made from the file name).
    pub title: String,
    /// Chunks it was split into.
    pub chunks: usize,
}

/// The text a citation points at, as the index holds it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Passage {
    /// Path of the document relative to the corpus root.
    pub path: String,
    /// The document's title.
    pub title: String,
    /// Heading path of the passage's (first) section.
    pub heading: String,
    /// First line of the passage in the document (1-based).
    pub line_start: u32,
    /// Last line (1-based, inclusive).
    pub line_end: u32,
    /// The passage's text, overlapping chunks joined without repeating the overlap.
    pub text: String,
}

/// Which part of a document a citation names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CitedPart<'a> {
    /// A line range (what every answer cites).
    Lines(RangeInclusive<u32>),
    /// A section heading, for citations stored without lines.
    Heading(&'a str),
}

impl Index {
    /// Every indexed document, sorted by path, with its title and number of chunks.
    ///
    /// Reads the path terms of the index and one stored chunk per document.
    ///
    /// # Errors
    /// [`RagError::Index`] when the index cannot be read.
    pub fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let searcher = self.searcher();
        let field = self.fields().path;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for segment in searcher.segment_readers() {
            let terms = segment.inverted_index(field)?;
            let mut stream = terms.terms().stream().map_err(unreadable)?;
            while stream.advance() {
                let path = String::from_utf8_lossy(stream.key()).into_owned();
                *counts.entry(path).or_default() += stream.value().doc_freq as usize;
            }
        }
        let mut documents = Vec::with_capacity(counts.len());
        for (path, chunks) in counts {
            let query = self.path_query(&path);
            let first = searcher.search(&query, &TopDocs::with_limit(1))?;
            let title = match first.first() {
                Some(&(_, address)) => self.stored_title(&searcher, address)?,
                None => String::new(),
            };
            documents.push(DocumentInfo {
                path,
                title,
                chunks,
            });
        }
        Ok(documents)
    }

    /// The passage of `path` that a citation names; `None` when the index has no such
    /// document, or nothing of it at that place (the documents changed since the answer).
    ///
    /// For a line range: the document's chunks that lie inside the range, merged; when none
    /// lies wholly inside (a citation narrower than a chunk), the chunks that overlap it.
    /// For a heading: the chunks of that section, merged.
    ///
    /// # Errors
    /// [`RagError::InvalidInput`] for an empty line range (start after end);
    /// [`RagError::Index`] when the index cannot be read.
    pub fn passage(&self, path: &str, part: &CitedPart<'_>) -> Result<Option<Passage>> {
        if let CitedPart::Lines(lines) = part {
            if lines.is_empty() {
                return Err(RagError::InvalidInput(format!(
                    "line range {}-{} ends before it starts",
                    lines.start(),
                    lines.end()
                )));
            }
        }
        let mut chunks = passages_of(self, path)?;
        chunks.sort_by_key(|c| (c.line_start, c.line_end));
        let chosen: Vec<Hit> = match part {
            CitedPart::Lines(lines) => {
                let inside = |c: &Hit| lines.contains(&c.line_start) && lines.contains(&c.line_end);
                if chunks.iter().any(inside) {
                    chunks.into_iter().filter(inside).collect()
                } else {
                    chunks
                        .into_iter()
                        .filter(|c| c.line_start <= *lines.end() && *lines.start() <= c.line_end)
                        .collect()
                }
            }
            CitedPart::Heading(heading) => chunks
                .into_iter()
                .filter(|c| c.heading == *heading)
                .collect(),
        };
        Ok(join_pieces(merge_overlapping(chosen)))
    }

    fn path_query(&self, path: &str) -> TermQuery {
        TermQuery::new(
            Term::from_field_text(self.fields().path, path),
            IndexRecordOption::Basic,
        )
    }

    fn stored_title(&self, searcher: &tantivy::Searcher, address: DocAddress) -> Result<String> {
        let doc: TantivyDocument = searcher.doc(address)?;
        Ok(doc
            .get_first(self.fields().title)
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default())
    }
}

fn unreadable(error: std::io::Error) -> RagError {
    RagError::Index {
        message: format!("cannot read the index's document paths: {error}"),
        retryable: false,
    }
}

/// One passage from the merged pieces of a citation, in document order: a range that
/// spans separate sections gives their texts one after the other.
fn join_pieces(mut pieces: Vec<Hit>) -> Option<Passage> {
    pieces.sort_by_key(|p| p.line_start);
    let first = pieces.first()?;
    let mut passage = Passage {
        path: first.path.clone(),
        title: first.title.clone(),
        heading: first.heading.clone(),
        line_start: first.line_start,
        line_end: first.line_end,
        text: String::new(),
    };
    for piece in &pieces {
        if !passage.text.is_empty() {
            passage.text.push_str("\n\n");
        }
        passage.text.push_str(&piece.text);
        passage.line_start = passage.line_start.min(piece.line_start);
        passage.line_end = passage.line_end.max(piece.line_end);
    }
    Some(passage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{CorpusSource, IngestOptions};
    use crate::ChunkOptions;

    /// A small corpus whose long section splits into overlapping chunks.
    fn index(dir: &std::path::Path) -> Index {
        let docs = dir.join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        let long: Vec<String> = (1..=12)
            .map(|i| format!("Sentence number {i} talks about gradient descent steps in detail."))
            .collect();
        std::fs::write(
            docs.join("a.md"),
            format!(
                "# Alpha Guide\n\nIntro line about alpha.\n\n## Long part\n\n{}\n\n## Short part\n\nShort text here.\n",
                long.join("\n")
            ),
        )
        .unwrap();
        std::fs::write(docs.join("b.txt"), "Beta notes.\n\nA second paragraph.\n").unwrap();
        let options = IngestOptions {
            chunk: ChunkOptions {
                target_chars: 200,
                overlap_chars: 70,
            },
            ..IngestOptions::default()
        };
        Index::open_or_build(dir, &CorpusSource::Dir(docs), &options, &|_| {})
            .unwrap()
            .0
    }

    #[test]
    fn documents_lists_each_file_with_title_and_chunk_count() {
        let dir = tempfile::tempdir().unwrap();
        let index = index(dir.path());
        let documents = index.documents().unwrap();
        let listed: Vec<(&str, &str)> = documents
            .iter()
            .map(|d| (d.path.as_str(), d.title.as_str()))
            .collect();
        assert_eq!(listed, vec![("a.md", "Alpha Guide"), ("b.txt", "B")]);
        assert_eq!(
            documents.iter().map(|d| d.chunks).sum::<usize>(),
            index.num_chunks()
        );
        assert!(documents[0].chunks > 3, "{documents:?}");
    }

    #[test]
    fn a_merged_citation_comes_back_as_one_passage() {
        let dir = tempfile::tempdir().unwrap();
        let index = index(dir.path());
        let hits = index
            .retriever()
            .search("gradient descent steps", &[], 1)
            .unwrap()
            .hits;
        let hit = &hits[0];
        let passage = index
            .passage(&hit.path, &CitedPart::Lines(hit.line_start..=hit.line_end))
            .unwrap()
            .expect("the cited passage");
        assert_eq!(
            (passage.line_start, passage.line_end),
            (hit.line_start, hit.line_end)
        );
        assert_eq!(passage.text, hit.text);
        assert_eq!(passage.heading, "Alpha Guide > Long part");

        // The whole long section: every sentence once, in order.
        let whole = index
            .passage("a.md", &CitedPart::Heading("Alpha Guide > Long part"))
            .unwrap()
            .unwrap();
        for i in 1..=12 {
            assert_eq!(
                whole.text.matches(&format!("number {i} ")).count(),
                1,
                "{i}: {}",
                whole.text
            );
        }
    }

    #[test]
    fn a_citation_narrower_than_a_chunk_gets_the_chunk_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let index = index(dir.path());
        let short = index
            .passage("a.md", &CitedPart::Heading("Alpha Guide > Short part"))
            .unwrap()
            .unwrap();
        let line = short.line_start;
        let again = index
            .passage("a.md", &CitedPart::Lines(line..=line))
            .unwrap()
            .unwrap();
        assert_eq!(again.text, "Short text here.");
    }

    #[test]
    fn unknown_places_are_none_and_bad_ranges_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let index = index(dir.path());
        assert_eq!(
            index
                .passage("nosuch.md", &CitedPart::Lines(1..=3))
                .unwrap(),
            None
        );
        assert_eq!(
            index.passage("a.md", &CitedPart::Lines(500..=600)).unwrap(),
            None
        );
        assert_eq!(
            index
                .passage("a.md", &CitedPart::Heading("No such heading"))
                .unwrap(),
            None
        );
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = CitedPart::Lines(9..=3);
        assert!(matches!(
            index.passage("a.md", &backwards),
            Err(RagError::InvalidInput(_))
        ));
    }
}
