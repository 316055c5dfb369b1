//! Markdown written for the chunker: how extracted PDF and HTML text keeps its structure.
//!
//! PDF pages and HTML pages are turned into markdown (headings, paragraphs, fenced code)
//! and chunked like a `.md` file, so their headings become the citations' heading paths.
//! Extracted text can itself look like markdown structure (a line `# 1 priority`, a row of
//! dashes that would underline the line above, a fence); such lines are escaped with a
//! leading backslash so that only the structure this writer emits is read as structure.

/// Builds a markdown document one block at a time; blocks are separated by blank lines.
#[derive(Debug, Default)]
pub(crate) struct MarkdownWriter {
    out: String,
    /// Whether a level-1 heading was written (the chunker takes the first one as title).
    has_title: bool,
}

impl MarkdownWriter {
    /// Appends a heading of `level` (1-6); whitespace is collapsed, a blank one is dropped.
    pub(crate) fn heading(&mut self, level: usize, text: &str) {
        let text = collapse_whitespace(text);
        if text.is_empty() {
            return;
        }
        self.has_title |= level == 1;
        let marks = "#".repeat(level.clamp(1, 6));
        self.out.push_str(&format!("{marks} {text}\n\n"));
    }

    /// Appends a paragraph: each non-blank line of `text`, escaped; nothing when all blank.
    pub(crate) fn paragraph(&mut self, text: &str) {
        let mut wrote = false;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.out.push_str(&escape_line(line));
            self.out.push('\n');
            wrote = true;
        }
        if wrote {
            self.out.push('\n');
        }
    }

    /// Appends a fenced code block holding `text` as is (the fence is longer than any run of
    /// backticks inside, so the text cannot close it).
    pub(crate) fn code(&mut self, text: &str) {
        let text = text.trim_matches('\n');
        if text.trim().is_empty() {
            return;
        }
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        self.out.push_str(&format!("{fence}\n{text}\n{fence}\n\n"));
    }

    /// Whether any text (not only headings) was written.
    pub(crate) fn is_blank(&self) -> bool {
        self.out
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#'))
    }

    /// The document; `title` becomes its level-1 heading when none was written.
    pub(crate) fn finish(self, title: Option<&str>) -> String {
        match title.map(collapse_whitespace).filter(|t| !t.is_empty()) {
            Some(title) if !self.has_title => format!("# {title}\n\n{}", self.out),
            _ => self.out,
        }
    }
}

/// Runs of whitespace become one space; the ends are trimmed.
pub(crate) fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `line`, with a backslash in front when the chunker would read it as structure: an ATX
/// heading (`# ...`), a code fence, or a line of one repeated punctuation character (a
/// setext underline, a thematic break, front matter).
fn escape_line(line: &str) -> std::borrow::Cow<'_, str> {
    let first = line.chars().next();
    let repeated = first.is_some_and(|c| "=-*_~+#`".contains(c) && line.chars().all(|d| d == c));
    let structural =
        line.starts_with('#') || line.starts_with("```") || line.starts_with("~~~") || repeated;
    if structural {
        format!("\\{line}").into()
    } else {
        line.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_comes_only_from_the_writer() {
        let mut md = MarkdownWriter::default();
        md.heading(2, "  Getting\n started ");
        md.paragraph("# not a heading\n-----\nplain text\n\n```\n");
        md.code("fn main() {}\n```inner```");
        assert!(!md.is_blank());
        let text = md.finish(Some("The  Title"));
        assert_eq!(
            text,
            "# The Title\n\n## Getting started\n\n\\# not a heading\n\\-----\nplain text\n\\```\n\n\
             ````\nfn main() {}\n```inner```\n````\n\n"
        );
    }

    #[test]
    fn a_written_title_wins_and_headings_alone_are_blank() {
        let mut md = MarkdownWriter::default();
        md.heading(1, "Own title");
        md.heading(3, " ");
        assert!(md.is_blank());
        assert_eq!(md.finish(Some("Other")), "# Own title\n\n");
    }
}
