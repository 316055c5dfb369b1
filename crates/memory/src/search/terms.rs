//! The terms of a query: its words, lowercased, without the common English words that
//! would match nearly every message (unless the query has nothing else), at most
//! [`MAX_TERMS`], each once. Backends turn them into their own query language, so a
//! query is never parsed as one (`"`, `*`, `NEAR`, `&` mean nothing special).

use std::collections::HashSet;

/// Terms a query keeps; the rest are ignored.
pub const MAX_TERMS: usize = 32;

/// Common English words that say little about which message is meant.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for",
    "from", "had", "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our", "she", "so", "some",
    "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "to", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
    "why", "will", "with", "would", "you", "your",
];

/// The terms of a query (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Terms {
    words: Vec<String>,
}

impl Terms {
    /// The terms of `text`.
    pub fn of(text: &str) -> Terms {
        let mut seen = HashSet::new();
        let all: Vec<String> = words(text)
            .map(|(_, w)| w.to_lowercase())
            .filter(|w| seen.insert(w.clone()))
            .collect();
        let telling: Vec<String> = all
            .iter()
            .filter(|w| !STOP_WORDS.contains(&w.as_str()))
            .cloned()
            .collect();
        let mut words = if telling.is_empty() { all } else { telling };
        words.truncate(MAX_TERMS);
        Terms { words }
    }

    /// The terms, lowercased, in the query's order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether some term says what is meant: not only common words ("what was it?").
    pub fn has_telling_words(&self) -> bool {
        self.words.iter().any(|w| !STOP_WORDS.contains(&w.as_str()))
    }

    /// Whether the query has no word at all (only punctuation).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The stems of the terms (how the snippet recognises `learned` for `learning`).
    pub fn stems(&self) -> HashSet<String> {
        self.words.iter().map(|w| stem(w)).collect()
    }
}

/// The words of `text`: runs of letters and digits, with their byte offsets.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = rest.peek() {
            if c.is_alphanumeric() {
                break;
            }
            rest.next();
        }
        let (start, _) = *rest.peek()?;
        let mut end = start;
        while let Some(&(i, c)) = rest.peek() {
            if !c.is_alphanumeric() {
                break;
            }
            end = i + c.len_utf8();
            rest.next();
        }
        Some((start, &text[start..end]))
    })
}

/// The English (Porter 2) stem of a lowercase word.
pub fn stem(word: &str) -> String {
    thread_local! {
        static STEMMER: rust_stemmers::Stemmer =
            rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English);
    }
    STEMMER.with(|s| s.stem(word).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_words_go_unless_nothing_else_is_left() {
        let t = Terms::of("What did we say about Learning rates, last week?");
        assert_eq!(t.words(), ["say", "learning", "rates", "last", "week"]);
        assert_eq!(Terms::of("what is it").words(), ["what", "is", "it"]);
        assert!(Terms::of("?!  --").is_empty());
    }

    #[test]
    fn query_syntax_is_just_text() {
        let t = Terms::of(r#""backup" NEAR(x*) & -rf /var"#);
        assert_eq!(t.words(), ["backup", "near", "x", "rf", "var"]);
    }

    #[test]
    fn terms_are_bounded_and_unique() {
        let text = (0..100).map(|i| format!("w{i} w{i}")).collect::<Vec<_>>();
        assert_eq!(Terms::of(&text.join(" ")).words().len(), MAX_TERMS);
    }

    #[test]
    fn words_keep_offsets_and_unicode() {
        let found: Vec<_> = words("¿Qué tal? naïve-café 42").collect();
        assert_eq!(
            found,
            [
                (2, "Qué"),
                (7, "tal"),
                (12, "naïve"),
                (19, "café"),
                (25, "42")
            ]
        );
        assert_eq!(stem("learning"), stem("learned"));
    }
}
