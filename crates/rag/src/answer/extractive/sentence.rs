//! Sentences as the extractive answerer sees them: cleaned for display, judged quotable or not,
//! and checked for leaning on the sentence before them.

use crate::text::words;

/// Whether a sentence can stand alone in an answer: a real sentence, not a heading, a fragment
/// introducing a list, or code.
pub(super) fn is_quotable(sentence: &str) -> bool {
    sentence.split_whitespace().count() >= 4
        && !sentence.ends_with(':')
        && !sentence.starts_with(['#', '|', '`', '>'])
        && reads_as_prose(sentence)
}

/// Whether a line says something in words rather than being a page header, a footer or a
/// link ("GNU coreutils 9.1 September 2022 CHMOD(1)", "Full documentation <https://...>"):
/// at least three lowercase words, outside links.
fn reads_as_prose(sentence: &str) -> bool {
    if sentence.contains("://") {
        return false;
    }
    let lowercase_word = |w: &&str| {
        let mut letters = w.chars().filter(|c| c.is_alphabetic());
        let all_lower = letters.clone().all(char::is_lowercase);
        all_lower && letters.nth(1).is_some()
    };
    sentence
        .split_whitespace()
        .filter(|w| !w.starts_with('<'))
        .filter(lowercase_word)
        .nth(2)
        .is_some()
}

/// Whether a sentence speaks about the document it stands in ("This article explains ...",
/// "In this guide we ...") rather than about the subject.
pub(super) fn about_the_document(sentence: &str) -> bool {
    const OPENERS: [&str; 4] = ["this ", "in this ", "the following ", "below, "];
    const DOCUMENTS: [&str; 9] = [
        "article", "guide", "page", "document", "section", "chapter", "post", "tutorial", "note",
    ];
    let lower = sentence.to_lowercase();
    OPENERS.iter().any(|opener| {
        lower.strip_prefix(opener).is_some_and(|rest| {
            DOCUMENTS.iter().any(|d| {
                rest.strip_prefix(d)
                    .is_some_and(|after| after.starts_with([' ', ',', 's']))
            })
        })
    })
}

/// Openers that make a sentence continue the one before it: "It ...", "This means ...",
/// "However, ...". Quoted alone, such a sentence refers to something the reader never saw.
const LEANING_OPENERS: &[&str] = &[
    "it",
    "its",
    "this",
    "that",
    "these",
    "those",
    "they",
    "their",
    "them",
    "such",
    "he",
    "she",
    "both",
    "however",
    "but",
    "so",
    "then",
    "thus",
    "therefore",
    "hence",
    "instead",
    "otherwise",
    "also",
    "still",
    "yet",
    "here",
    "there",
    "likewise",
    "similarly",
    "conversely",
    "meanwhile",
    "finally",
    "later",
    "again",
    "another",
];
/// Phrases that point back inside a sentence: "... cannot tell the difference and learns both."
const BACK_REFERENCES: &[&str] = &[
    "the difference",
    "the former",
    "the latter",
    "the same",
    "the other",
    "this way",
    "that way",
    "the above",
    "learns both",
    "and both",
    "of both",
    "either one",
    "as well",
];
/// Determiners after which a noun is the one just mentioned ("An overfitted model" is not,
/// "This model" is).
const DEMONSTRATIVES: &[&str] = &["this", "that", "these", "those", "such"];

/// Whether `sentence` needs the sentence before it to be understood.
pub(super) fn leans_on_previous(sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    let mut words = words(&lower);
    let Some(first) = words.next() else {
        return false;
    };
    if LEANING_OPENERS.contains(&first.as_str()) {
        // "There are three ..." and "It is common to ..." introduce rather than refer back.
        let second = words.next().unwrap_or_default();
        let introduces = matches!(first.as_str(), "there" | "it" | "here")
            && matches!(second.as_str(), "are" | "is" | "was" | "were" | "helps");
        return !introduces;
    }
    let after_comma = lower
        .split_once(", ")
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(""));
    if after_comma.is_some_and(|w| DEMONSTRATIVES.contains(&w)) && lower.len() < 160 {
        return true;
    }
    BACK_REFERENCES.iter().any(|phrase| lower.contains(phrase))
}

/// Strips markdown markup and list markers and collapses whitespace, for display.
pub(super) fn clean_sentence(raw: &str) -> String {
    let mut text = raw.trim();
    for marker in ["- ", "* ", "+ "] {
        text = text.strip_prefix(marker).unwrap_or(text);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with(". ") {
        text = &text[digits + 2..];
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // Links: keep the label, drop the target.
    while let Some(open) = rest.find('[') {
        let label_end = rest[open..].find("](").map(|i| open + i);
        let target_end = label_end.and_then(|l| rest[l..].find(')').map(|i| l + i));
        match (label_end, target_end) {
            (Some(label_end), Some(target_end)) => {
                out.push_str(&rest[..open]);
                out.push_str(&rest[open + 1..label_end]);
                rest = &rest[target_end + 1..];
            }
            _ => break,
        }
    }
    out.push_str(rest);
    let out = out.replace("**", "").replace("__", "").replace('`', "");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `text` without the phrases it quotes ("The capital of France is,"): a quoted phrase is an
/// example or a mention, not what the text is about. Single quoted words ("called
/// \"epochs\"") stay, since definitions quote the term they define.
pub(super) fn without_quoted_phrases(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['"', '“']) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['"', '“']) {
        let quote_len = rest[open..].chars().next().map_or(1, char::len_utf8);
        let after = &rest[open + quote_len..];
        let Some(close) = after.find(['"', '”']) else {
            break;
        };
        let quoted = &after[..close];
        out.push_str(&rest[..open]);
        if quoted.split_whitespace().count() < 2 {
            out.push(' ');
            out.push_str(quoted);
            out.push(' ');
        }
        let close_len = after[close..].chars().next().map_or(1, char::len_utf8);
        rest = &after[close + close_len..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_phrases_are_mentions_not_topics() {
        assert_eq!(
            without_quoted_phrases(r#"Given "The capital of France is," the model says Paris."#),
            "Given  the model says Paris."
        );
        assert_eq!(
            without_quoted_phrases(r#"One pass is called an "epoch" here."#),
            "One pass is called an  epoch  here."
        );
        assert_eq!(without_quoted_phrases("No quotes."), "No quotes.");
        assert_eq!(
            without_quoted_phrases("Unclosed \"quote"),
            "Unclosed \"quote"
        );
    }

    #[test]
    fn sentences_about_the_document_are_recognised() {
        assert!(about_the_document(
            "This article explains how models learn from data."
        ));
        assert!(about_the_document("In this guide, we set up the index."));
        assert!(!about_the_document("This model learns from data."));
        assert!(!about_the_document("Articles about models abound."));
    }

    #[test]
    fn headers_footers_and_links_are_not_quotable() {
        assert!(!is_quotable("GNU coreutils 9.1 September 2022 CHMOD(1)"));
        assert!(!is_quotable("CHMOD(1) User Commands CHMOD(1)"));
        assert!(!is_quotable(
            "Full documentation <https://www.gnu.org/software/coreutils/chmod> or available locally"
        ));
        assert!(is_quotable("-S sort by file size, largest first"));
        assert!(is_quotable("chmod - change file mode bits"));
        assert!(!is_quotable("Common examples include:"));
    }

    #[test]
    fn sentences_that_refer_back_are_recognised() {
        for leaning in [
            "An overfitted model cannot tell the difference and learns both.",
            "It repeats this many times.",
            "However, the steps shrink over time.",
            "Because no neuron can rely on any partner, this forces redundancy.",
            "These make the model simpler.",
        ] {
            assert!(leans_on_previous(leaning), "{leaning:?}");
        }
        for standalone in [
            "Overfitting happens when a model memorises the training data.",
            "There are three main kinds of machine learning.",
            "It is common to start with a learning rate of 0.01.",
            "Never add cream or milk to scrambled eggs.",
        ] {
            assert!(!leans_on_previous(standalone), "{standalone:?}");
        }
    }

    #[test]
    fn cleans_markdown_for_display() {
        assert_eq!(
            clean_sentence("- **Bold** [link text](http://x.y) and `code`\n  wrapped."),
            "Bold link text and code wrapped."
        );
    }
}
