//! Words that shape how something is asked rather than what it is about: the "long" of "How
//! long do I boil it?" asks for a duration, the "keep" of "keep going" asks to continue. Query
//! terms leave them out, so they neither steer retrieval nor have to be covered by an answer.

/// Words that, right after "how", ask for a quantity ("How long do I boil it?", "How much
/// salt?") rather than name a topic.
const QUANTITY_WORDS: &[&str] = &["long", "much", "many", "often", "far", "big", "old", "soon"];

/// `text` without words that only shape the asking: the quantity word of "how long", "how
/// much" and the like, and the "keep" of "keep going" ("How long can I keep rice?" keeps it).
pub(crate) fn without_asking_words(text: &str) -> std::borrow::Cow<'_, str> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        // Lowercasing changed byte offsets (rare letters): leave the text as it is.
        return std::borrow::Cow::Borrowed(text);
    }
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let mut find = |phrase: String, skip: usize, len: usize| {
        let mut from = 0;
        while let Some(at) = lower[from..].find(&phrase).map(|i| i + from) {
            let end = at + phrase.len();
            // "long-grain" is a word of its own, not "long" then "grain".
            let part_of_word = |c: char| c.is_alphanumeric() || c == '-';
            let starts_word = at == 0 || !lower[..at].ends_with(part_of_word);
            let ends_word = !lower[end..].starts_with(part_of_word);
            if starts_word && ends_word {
                cuts.push((at + skip, at + skip + len));
            }
            from = end;
        }
    };
    for word in QUANTITY_WORDS {
        find(format!("how {word}"), "how ".len(), word.len());
    }
    for phrase in ["keep going", "keep on"] {
        find(phrase.to_owned(), 0, "keep".len());
    }
    if cuts.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    cuts.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in cuts {
        if start >= at {
            out.push_str(&text[at..start]);
            at = end;
        }
    }
    out.push_str(&text[at..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_and_continuation_words_are_cut() {
        assert_eq!(
            without_asking_words("How long do I boil it?"),
            "How  do I boil it?"
        );
        assert_eq!(without_asking_words("Keep going"), " going");
        assert_eq!(
            without_asking_words("How long-grain rice cooks"),
            "How long-grain rice cooks"
        );
        assert_eq!(without_asking_words("Long sentences"), "Long sentences");
    }
}
