//! Document structure: the title, and sections (heading path + text blocks) of a document.
//!
//! The format is chosen by extension: markdown (ATX `#` and setext headings, fenced code, front
//! matter; also HTML and PDF, which the corpus turns into markdown), reStructuredText (underlined and overlined titles, levels in order of appearance), and
//! plain text (underlined titles and all-caps section lines as in man pages).

/// A run of consecutive non-blank lines (or a whole fenced code block), borrowed from the document.
pub(super) struct Block<'a> {
    /// The block's text, trimmed.
    pub text: &'a str,
    /// Line of the first byte of `text` (1-based).
    pub line_start: u32,
    /// Whether this is a fenced code block (split by lines, not sentences).
    pub code: bool,
    /// Byte offsets of the newlines inside `text`.
    newlines: Vec<usize>,
}

impl<'a> Block<'a> {
    fn new(text: &'a str, line_start: u32, code: bool) -> Self {
        let newlines = text.match_indices('\n').map(|(i, _)| i).collect();
        Block {
            text,
            line_start,
            code,
            newlines,
        }
    }

    /// Line of the last byte of the block.
    pub(super) fn line_end(&self) -> u32 {
        self.line_start + to_u32(self.newlines.len())
    }

    /// Line that holds byte `offset` of `text`.
    pub(super) fn line_at(&self, offset: usize) -> u32 {
        self.line_start + to_u32(self.newlines.partition_point(|&n| n < offset))
    }
}

/// A heading path and the blocks under it (before the next heading).
pub(super) struct Section<'a> {
    pub headings: Vec<String>,
    pub blocks: Vec<Block<'a>>,
}

pub(super) struct Parsed<'a> {
    pub title: String,
    pub sections: Vec<Section<'a>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Markdown,
    Rst,
    Plain,
}

/// Parses `text` into its title and sections. The format comes from `path`'s extension.
pub(super) fn parse<'a>(path: &str, text: &'a str) -> Parsed<'a> {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let format = match extension.as_deref() {
        // HTML pages and PDFs reach the chunker as markdown (see `corpus::markup`).
        Some("md" | "markdown" | "html" | "htm" | "xhtml" | "pdf") => Format::Markdown,
        Some("rst") => Format::Rst,
        _ => Format::Plain,
    };
    let mut parser = Parser::new(text, format, true);
    parser.run();
    let has_text = parser.sections.iter().any(|s| !s.blocks.is_empty());
    if !has_text && !text.trim().is_empty() {
        // Everything looked like a heading (say, a shouting all-caps note): index it as prose.
        parser = Parser::new(text, format, false);
        parser.run();
    }
    let title = parser.title.take().unwrap_or_else(|| title_from_path(path));
    Parsed {
        title,
        sections: parser
            .sections
            .into_iter()
            .filter(|s| !s.blocks.is_empty())
            .collect(),
    }
}

/// `guides/getting-started.md` -> `Getting started`.
fn title_from_path(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
    let spaced = stem.replace(['-', '_'], " ");
    let mut chars = spaced.trim().chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "Untitled".to_owned(),
    }
}

struct Line {
    start: usize,
    /// End of the line's content, before `\r\n` or `\n`.
    end: usize,
}

struct Parser<'a> {
    text: &'a str,
    lines: Vec<Line>,
    format: Format,
    detect_headings: bool,
    title: Option<String>,
    /// Heading stack: (level, text).
    stack: Vec<(usize, String)>,
    /// Underline styles in order of first appearance (reStructuredText levels): (char, overline).
    styles: Vec<(char, bool)>,
    sections: Vec<Section<'a>>,
    /// Index of the first line of the paragraph being collected.
    paragraph: Option<usize>,
    seen_text: bool,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, format: Format, detect_headings: bool) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        for raw in text.split_inclusive('\n') {
            let content = raw.trim_end_matches(['\n', '\r']);
            lines.push(Line {
                start,
                end: start + content.len(),
            });
            start += raw.len();
        }
        Parser {
            text,
            lines,
            format,
            detect_headings,
            title: None,
            stack: Vec::new(),
            styles: Vec::new(),
            sections: vec![Section {
                headings: Vec::new(),
                blocks: Vec::new(),
            }],
            paragraph: None,
            seen_text: false,
        }
    }

    fn line(&self, i: usize) -> &'a str {
        self.lines.get(i).map_or("", |l| &self.text[l.start..l.end])
    }

    fn run(&mut self) {
        let mut i = 0;
        if self.format == Format::Markdown {
            i = self.skip_front_matter();
        }
        while i < self.lines.len() {
            let line = self.line(i);
            if self.format == Format::Markdown {
                if let Some(fence) = fence_marker(line) {
                    self.flush_paragraph(i);
                    i = self.code_block(i, fence);
                    continue;
                }
                if is_thematic_break(line) && self.paragraph.is_none() {
                    i += 1;
                    continue;
                }
            }
            if self.detect_headings {
                if let Some((level, heading, consumed)) = self.heading_at(i) {
                    self.flush_paragraph(i);
                    self.push_heading(level, heading);
                    i += consumed;
                    continue;
                }
            }
            if line.trim().is_empty() {
                self.flush_paragraph(i);
            } else if self.paragraph.is_none() {
                self.paragraph = Some(i);
            }
            i += 1;
        }
        self.flush_paragraph(self.lines.len());
    }

    /// Skips a leading `---` ... `---` YAML block; returns the first line after it.
    fn skip_front_matter(&self) -> usize {
        if self.line(0).trim_end() != "---" {
            return 0;
        }
        (1..self.lines.len().min(200))
            .find(|&i| matches!(self.line(i).trim_end(), "---" | "..."))
            .map_or(0, |close| close + 1)
    }

    /// Consumes a fenced code block starting at `open`; returns the line after its closing fence.
    fn code_block(&mut self, open: usize, fence: &str) -> usize {
        let close = (open + 1..self.lines.len())
            .find(|&i| self.line(i).trim().starts_with(fence))
            .unwrap_or(self.lines.len().saturating_sub(1));
        self.push_block(open, close, true);
        close + 1
    }

    fn flush_paragraph(&mut self, end_exclusive: usize) {
        if let Some(first) = self.paragraph.take() {
            let last = (first..end_exclusive)
                .rev()
                .find(|&i| !self.line(i).trim().is_empty())
                .unwrap_or(first);
            self.push_block(first, last, false);
        }
    }

    fn push_block(&mut self, first: usize, last: usize, code: bool) {
        let (Some(first_line), Some(last_line)) = (self.lines.get(first), self.lines.get(last))
        else {
            return;
        };
        let raw = &self.text[first_line.start..last_line.end.max(first_line.start)];
        let leading = raw.len() - raw.trim_start().len();
        let text = raw.trim();
        if text.is_empty() {
            return;
        }
        let line_start = to_u32(first) + 1 + to_u32(raw[..leading].matches('\n').count());
        self.seen_text = true;
        if let Some(section) = self.sections.last_mut() {
            section.blocks.push(Block::new(text, line_start, code));
        }
    }

    fn push_heading(&mut self, level: usize, heading: String) {
        // The first top-level heading is the title: in markdown wherever it is (the first `#`),
        // elsewhere only when it opens the document.
        let opens = !self.seen_text || self.format == Format::Markdown;
        if self.title.is_none() && level == 1 && opens {
            self.title = Some(heading.clone());
        }
        while self.stack.last().is_some_and(|(l, _)| *l >= level) {
            self.stack.pop();
        }
        self.stack.push((level, heading));
        self.sections.push(Section {
            headings: self.stack.iter().map(|(_, h)| h.clone()).collect(),
            blocks: Vec::new(),
        });
    }

    /// A heading starting at line `i`: (level, text, lines consumed).
    fn heading_at(&mut self, i: usize) -> Option<(usize, String, usize)> {
        let line = self.line(i);
        if self.format == Format::Markdown {
            if let Some((level, text)) = atx_heading(line) {
                return Some((level, text, 1));
            }
        }
        // Underlined titles only start a paragraph; a line inside one is text.
        if self.paragraph.is_some() {
            return None;
        }
        if let Some(found) = self.underlined_heading(i) {
            return Some(found);
        }
        if self.format == Format::Plain && is_caps_heading(line) {
            return Some((2, line.trim().to_owned(), 1));
        }
        None
    }

    /// Setext (markdown) or reStructuredText-style underlined, optionally overlined, heading.
    fn underlined_heading(&mut self, i: usize) -> Option<(usize, String, usize)> {
        let (over, title_line) = match adornment(self.line(i)) {
            Some(c) if self.format == Format::Rst => (Some(c), i + 1),
            _ => (None, i),
        };
        let title = self.line(title_line).trim();
        if title.is_empty() || adornment(title).is_some() || crate::text::is_list_item(title) {
            return None;
        }
        let under = adornment(self.line(title_line + 1))?;
        if over.is_some_and(|c| c != under) {
            return None;
        }
        let run = self.line(title_line + 1).trim().chars().count();
        if run + 3 < title.chars().count() && self.format != Format::Markdown {
            return None;
        }
        let consumed = title_line + 2 - i;
        let level = match self.format {
            Format::Markdown => match under {
                '=' => 1,
                '-' => 2,
                _ => return None,
            },
            Format::Plain if !matches!(under, '=' | '-' | '~' | '*') => return None,
            _ => {
                let style = (under, over.is_some());
                let position = self.styles.iter().position(|s| *s == style);
                position.unwrap_or_else(|| {
                    self.styles.push(style);
                    self.styles.len() - 1
                }) + 1
            }
        };
        Some((level, title.to_owned(), consumed))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `## Title ##` -> (2, "Title"), for up to three spaces of indentation.
fn atx_heading(line: &str) -> Option<(usize, String)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.bytes().take_while(|&b| b == b'#').count();
    let rest = &trimmed[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    (!text.is_empty()).then(|| (level, text.to_owned()))
}

/// The fence (```` ``` ```` or `~~~`) that a line opens, if any.
fn fence_marker(line: &str) -> Option<&'static str> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    if trimmed.starts_with("```") {
        Some("```")
    } else if trimmed.starts_with("~~~") {
        Some("~~~")
    } else {
        None
    }
}

/// `---`, `***`, `___` (spaces allowed between): a horizontal rule, not text.
fn is_thematic_break(line: &str) -> bool {
    let mut marks = line.chars().filter(|c| !c.is_whitespace());
    match marks.next() {
        Some(mark @ ('-' | '*' | '_')) => {
            let mut count = 1;
            marks.all(|c| {
                count += 1;
                c == mark
            }) && count >= 3
        }
        _ => false,
    }
}

/// The character of a title adornment line (`=====`, `-----`, `~~~~`), if the line is one.
fn adornment(line: &str) -> Option<char> {
    let trimmed = line.trim_end();
    let first = trimmed.chars().next()?;
    let adorns = "=-~^\"'`#*+:._".contains(first) && trimmed.chars().all(|c| c == first);
    (adorns && trimmed.chars().count() >= 3).then_some(first)
}

/// A man-page style section line: unindented, short, all letters uppercase (`DESCRIPTION`).
fn is_caps_heading(line: &str) -> bool {
    if line.starts_with(char::is_whitespace) {
        return false;
    }
    let line = line.trim_end();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    (2..=60).contains(&line.chars().count())
        && letters >= 2
        && line.split_whitespace().count() <= 6
        && !line.ends_with(['.', ',', ';'])
        && line
            .chars()
            .filter(|c| c.is_alphabetic())
            .all(char::is_uppercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heading path and block line ranges of one section.
    type Outline = (String, Vec<(u32, u32)>);

    fn outline(path: &str, text: &str) -> (String, Vec<Outline>) {
        let parsed = parse(path, text);
        let sections = parsed
            .sections
            .iter()
            .map(|s| {
                let lines = s
                    .blocks
                    .iter()
                    .map(|b| (b.line_start, b.line_end()))
                    .collect();
                (s.headings.join(" > "), lines)
            })
            .collect();
        (parsed.title, sections)
    }

    #[test]
    fn markdown_ignores_headings_in_code_and_front_matter() {
        let text = "---\ntitle: x\n---\nPreamble.\n\n# Guide\n\n```sh\n# not a heading\n\nls\n```\n\nSetext\n------\nBody\nmore body\n";
        let (title, sections) = outline("guide.md", text);
        assert_eq!(title, "Guide");
        assert_eq!(
            sections,
            vec![
                (String::new(), vec![(4, 4)]),
                ("Guide".into(), vec![(8, 12)]),
                ("Guide > Setext".into(), vec![(16, 17)]),
            ]
        );
    }

    #[test]
    fn rst_levels_follow_adornment_order() {
        let text = "=====\nTools\n=====\n\nIntro.\n\nInstall\n-------\n\nRun it.\n\nDetails\n~~~~~~~\n\nFine print.\n\nUsage\n-----\n\nCall it.\n";
        let (title, sections) = outline("tools.rst", text);
        assert_eq!(title, "Tools");
        let headings: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(
            headings,
            vec![
                "Tools",
                "Tools > Install",
                "Tools > Install > Details",
                "Tools > Usage"
            ]
        );
    }

    #[test]
    fn man_page_sections_are_headings() {
        let text = "LS(1)\n\nNAME\n       ls - list directory contents\n\nDESCRIPTION\n       List information about the FILEs.\n";
        let (title, sections) = outline("ls.txt", text);
        assert_eq!(title, "Ls");
        assert_eq!(
            sections,
            vec![
                ("NAME".into(), vec![(4, 4)]),
                ("DESCRIPTION".into(), vec![(7, 7)]),
            ]
        );
    }

    #[test]
    fn all_caps_only_text_falls_back_to_prose() {
        let (_, sections) = outline("shout.txt", "HELLO THERE\n\nGOODBYE NOW\n");
        assert_eq!(sections, vec![(String::new(), vec![(1, 1), (3, 3)])]);
    }

    #[test]
    fn a_line_inside_a_paragraph_is_not_a_heading() {
        let (title, sections) = outline("p.md", "First line\nSecond line\n---\n");
        assert_eq!(title, "P");
        assert_eq!(sections, vec![(String::new(), vec![(1, 3)])]);
    }
}
