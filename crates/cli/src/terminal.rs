//! Showing stored text on a terminal without letting it drive the terminal.
//!
//! Conversations hold whatever people (and LLMs) wrote, which may include escape
//! sequences: `ESC[31m` recolours the terminal, `ESC]0;...` retitles the window, some
//! terminals act on sequences that rewrite the clipboard or fake a prompt, and a bare
//! carriage return overwrites what was printed. [`visible`] writes every control
//! character out as an escape (`\x1b`, `\r`, `\u{9b}`) instead, keeping newlines and
//! tabs, and does the same for the Unicode marks that reorder text on screen
//! (bidirectional overrides and isolates). JSON output needs none of this: it escapes
//! control characters itself.

use std::borrow::Cow;

/// `text` with control characters and bidi controls written as visible escapes.
pub(crate) fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !needs_escape(c) {
            shown.push(c);
            continue;
        }
        match c {
            '\r' => shown.push_str("\\r"),
            c if (c as u32) < 0x80 => shown.push_str(&format!("\\x{:02x}", c as u32)),
            c => shown.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(shown)
}

fn needs_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        // C0 controls, DEL, C1 controls (U+009B is a one-byte CSI to some terminals).
        c if c.is_control() => true,
        // Bidirectional embeddings, overrides and isolates, which reorder what is shown.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(visible("plain text\n\tok"), "plain text\n\tok");
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("\u{1b}[31mred\u{1b}[0m"), "\\x1b[31mred\\x1b[0m");
        assert_eq!(visible("a\rb\u{7}\u{7f}"), "a\\rb\\x07\\x7f");
        assert_eq!(visible("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(visible("é ✓ 日本"), "é ✓ 日本");
    }
}
