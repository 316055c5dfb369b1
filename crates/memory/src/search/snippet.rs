//! The snippet of a hit: the part of the message with the most matched words, about
//! [`SNIPPET_CHARS`] characters, cut at word boundaries (`…` where it was cut), blanks
//! collapsed to single spaces, the matched words between `<mark>` and `</mark>`, and
//! everything else HTML-escaped (`&`, `<`, `>`, `"`, `'`), so that a page can insert
//! it as HTML and a terminal can turn the marks into its own emphasis.
//!
//! A word matches when it, or its English stem, is one of the query's terms or their
//! stems: the same words the stores' stemming matched, give or take a stemmer's
//! difference (SQLite's FTS5 stems with Porter, PostgreSQL and this module with
//! Porter 2).

use std::collections::HashSet;

use super::terms::{stem, words, Terms};

/// About how many characters of a message a snippet shows.
pub const SNIPPET_CHARS: usize = 200;
/// Characters shown before the first match of the window.
const LEAD_CHARS: usize = 40;

/// The snippet of `content` for the query's `terms` (see the module docs).
pub fn snippet(content: &str, terms: &Terms) -> String {
    let stems = terms.stems();
    let plain: HashSet<&str> = terms.words().iter().map(String::as_str).collect();
    let all: Vec<(usize, &str)> = words(content).collect();
    let matched: Vec<bool> = all
        .iter()
        .map(|(_, w)| {
            let lower = w.to_lowercase();
            plain.contains(lower.as_str()) || stems.contains(&stem(&lower))
        })
        .collect();
    let (from, to) = window(content, &all, &matched);
    let mut out = String::with_capacity(to - from + 32);
    if from > 0 {
        out.push('…');
    }
    let mut at = from;
    for ((start, word), hit) in all.iter().zip(&matched) {
        let end = start + word.len();
        if *start < from || end > to {
            continue;
        }
        escape_into(&mut out, &content[at..*start]);
        if *hit {
            out.push_str("<mark>");
            escape_into(&mut out, word);
            out.push_str("</mark>");
        } else {
            escape_into(&mut out, word);
        }
        at = end;
    }
    escape_into(&mut out, &content[at..to]);
    let trimmed_end = out.trim_end().len();
    out.truncate(trimmed_end);
    if to < content.len() {
        out.push('…');
    }
    out.trim_start().to_string()
}

/// The byte range shown: the window of about [`SNIPPET_CHARS`] characters that holds
/// the most matched words, starting a little before its first one; word boundaries at
/// both ends.
fn window(content: &str, all: &[(usize, &str)], matched: &[bool]) -> (usize, usize) {
    let hits: Vec<usize> = all
        .iter()
        .zip(matched)
        .filter(|(_, m)| **m)
        .map(|((start, _), _)| *start)
        .collect();
    let reach = |from: usize, chars: usize| -> usize {
        content[from..]
            .char_indices()
            .nth(chars)
            .map_or(content.len(), |(i, _)| from + i)
    };
    let best = hits
        .iter()
        .map(|&start| {
            let end = reach(start, SNIPPET_CHARS - LEAD_CHARS);
            let inside = hits.iter().filter(|&&h| h >= start && h < end).count();
            (inside, std::cmp::Reverse(start))
        })
        .max()
        .map_or(0, |(_, std::cmp::Reverse(start))| start);
    let back = content[..best].chars().rev().take(LEAD_CHARS).count();
    let back_bytes: usize = content[..best]
        .chars()
        .rev()
        .take(back)
        .map(char::len_utf8)
        .sum();
    let mut from = best - back_bytes;
    let mut to = reach(from, SNIPPET_CHARS);
    // Whole words only: a word cut by either end is left out.
    for (start, word) in all {
        let end = start + word.len();
        if *start < from && end > from {
            from = end;
        }
        if *start < to && end > to {
            to = *start;
        }
    }
    if to < from {
        to = from;
    }
    (from, to)
}

fn escape_into(out: &mut String, text: &str) {
    let mut blank = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !blank {
                out.push(' ');
            }
            blank = true;
            continue;
        }
        blank = false;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

/// A snippet as plain text for a terminal: marks become `open` and `close`, the HTML
/// escapes their characters again.
pub fn to_plain(snippet: &str, open: &str, close: &str) -> String {
    snippet
        .replace("<mark>", open)
        .replace("</mark>", close)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_stemmed_matches_and_escapes_the_rest() {
        let t = Terms::of("learning rate");
        let s = snippet(
            "We <b>lowered</b> the learned\n\nRates & \"learning\" stays.",
            &t,
        );
        assert_eq!(
            s,
            "We &lt;b&gt;lowered&lt;/b&gt; the <mark>learned</mark> <mark>Rates</mark> &amp; \
             &quot;<mark>learning</mark>&quot; stays."
        );
        assert_eq!(
            to_plain(&s, "«", "»"),
            "We <b>lowered</b> the «learned» «Rates» & \"«learning»\" stays."
        );
    }

    #[test]
    fn long_messages_show_the_window_with_the_most_matches() {
        let filler = "lorem ipsum ".repeat(60);
        let content = format!(
            "backup once here. {filler} the backup command is restic backup --repo x. {filler}"
        );
        let s = snippet(&content, &Terms::of("restic backup"));
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("<mark>restic</mark> <mark>backup</mark>"), "{s}");
        assert!(s.chars().count() <= SNIPPET_CHARS + 40, "{}", s.len());
    }

    #[test]
    fn no_match_shows_the_start_and_unicode_is_cut_whole() {
        let s = snippet(&"é".repeat(500), &Terms::of("zzz"));
        assert_eq!(s, "…", "one word longer than a snippet shows as cut");
        let s = snippet("short text", &Terms::of("zzz"));
        assert_eq!(s, "short text");
        let long = "ünïcödé wörds ".repeat(50);
        let s = snippet(&long, &Terms::of("wörds"));
        assert!(s.contains("<mark>wörds</mark>"), "{s}");
    }
}
