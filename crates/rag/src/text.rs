//! Text analysis shared by indexing, query building and the extractive answerer.
//!
//! One English analyzer (split on non-alphanumerics, drop very long tokens, fold accents,
//! lowercase, American spelling, remove stop words, Porter-stem) is used to index and to query, so a word in a
//! question matches the same word in a document in any inflection. Sentence splitting lives here
//! too, because chunking and answer extraction must agree on what a sentence is.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::OnceLock;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};

/// Name under which [`english_analyzer`] is registered in the tantivy index.
pub(crate) const ANALYZER_NAME: &str = "ragchat_en";

/// Function words removed at index and query time. Wider than Lucene's list on purpose: question
/// words ("what", "how", "does") carry no topic and would otherwise match every explanatory text.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few",
    "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more",
    "most", "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other",
    "our", "ours", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than",
    "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those",
    "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours",
];

/// Conversational filler removed from queries only: words people use to ask, not topic words.
const QUERY_FILLER: &[&str] = &[
    "tell",
    "explain",
    "describe",
    "please",
    "know",
    "want",
    "like",
    "continue",
    "go",
    "need",
    "needs",
    "get",
    "say",
    "talk",
    "talking",
    "thing",
    "things",
    "something",
    "anything",
    "kind",
    "sort",
    "lot",
    "give",
    "let",
    "us",
    "bit",
    "little",
    "detail",
    "details",
    "else",
    "again",
    "ok",
    "okay",
    "thanks",
    "thank",
    "yes",
    "yeah",
    "hi",
    "hello",
    "conversation",
    "work",
    "works",
    "happen",
    "happens",
    // "And a hard one?": "one" stands for the thing just discussed.
    "one",
    "ones",
];

/// Tokens longer than this are noise (hashes, base64, URLs glued together) and are dropped.
const MAX_TOKEN_BYTES: usize = 40;

/// Builds the English analyzer used for every indexed text field and every query.
pub(crate) fn english_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(AsciiFoldingFilter)
        .filter(LowerCaser)
        .filter(crate::spelling::AmericanSpelling)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// The analyzed (lowercased, stop-word-free, stemmed) terms of `text`, in order, with repeats.
pub(crate) fn analyze(text: &str) -> Vec<String> {
    thread_local! {
        static ANALYZER: std::cell::RefCell<TextAnalyzer> =
            std::cell::RefCell::new(english_analyzer());
    }
    ANALYZER.with(|analyzer| {
        let mut analyzer = analyzer.borrow_mut();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(stream.token().text.clone());
        }
        terms
    })
}

/// The distinct topic terms of a query: [`analyze`] minus conversational filler, first occurrence
/// order kept.
pub(crate) fn query_terms(text: &str) -> Vec<String> {
    static FILLER: OnceLock<HashSet<String>> = OnceLock::new();
    let filler = FILLER.get_or_init(|| QUERY_FILLER.iter().flat_map(|w| analyze(w)).collect());
    let mut seen = HashSet::new();
    let text = without_asking_words(text);
    analyze(&expand_acronyms(&text))
        .into_iter()
        .filter(|term| !filler.contains(term) && seen.insert(term.clone()))
        .collect()
}

/// Words that, right after "how", ask for a quantity ("How long do I boil it?", "How much
/// salt?") rather than name a topic.
const QUANTITY_WORDS: &[&str] = &["long", "much", "many", "often", "far", "big", "old", "soon"];

/// `text` without words that only shape the asking: the quantity word of "how long", "how
/// much" and the like, and the "keep" of "keep going" ("How long can I keep rice?" keeps it).
fn without_asking_words(text: &str) -> std::borrow::Cow<'_, str> {
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
            let starts_word = at == 0 || !lower[..at].ends_with(char::is_alphanumeric);
            let ends_word = !lower[end..].starts_with(char::is_alphanumeric);
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

/// Acronyms people type in questions ("What is ML?"), with the words the documents use.
const ACRONYMS: &[(&str, &str)] = &[
    ("AI", "artificial intelligence"),
    ("ML", "machine learning"),
    ("DL", "deep learning"),
    ("NN", "neural network"),
    ("ANN", "artificial neural network"),
    ("CNN", "convolutional neural network"),
    ("RNN", "recurrent neural network"),
    ("LSTM", "long short-term memory recurrent"),
    ("LLM", "large language model"),
    ("RAG", "retrieval-augmented generation"),
    ("NLP", "natural language processing"),
    ("RL", "reinforcement learning"),
    ("SVM", "support vector machine"),
    ("KNN", "k-nearest neighbors"),
    ("PCA", "principal component analysis"),
    ("GD", "gradient descent"),
    ("SGD", "stochastic gradient descent"),
    ("MSE", "mean squared error"),
    ("MAE", "mean absolute error"),
];

/// `text` followed by the expansion of every acronym it contains (as written, upper case,
/// optionally plural: "LLMs"), so that questions match documents that spell them out.
pub(crate) fn expand_acronyms(text: &str) -> std::borrow::Cow<'_, str> {
    let mut expanded = String::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let singular = word
            .strip_suffix('s')
            .filter(|w| w.len() >= 2)
            .unwrap_or(word);
        let key = if singular.eq_ignore_ascii_case("knn") {
            "KNN"
        } else {
            singular
        };
        if let Some((_, words)) = ACRONYMS.iter().find(|(acronym, _)| *acronym == key) {
            expanded.push(' ');
            expanded.push_str(words);
        }
    }
    if expanded.is_empty() {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(format!("{text}{expanded}"))
    }
}

/// Lowercased words of `text` (letters, digits and apostrophes), without any filtering: for
/// recognising phrasing such as pronouns or "what about".
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// A sentence reduced to lowercase letters and digits, citation markers (`[2]`) removed: equal
/// for the same sentence quoted with different markup or citations.
pub(crate) fn fingerprint(sentence: &str) -> String {
    let mut without_citations = String::with_capacity(sentence.len());
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        without_citations.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']') {
            Some(close) if after[..close].chars().all(|c| c.is_ascii_digit()) => {
                rest = &after[close + 1..];
            }
            _ => {
                without_citations.push('[');
                rest = after;
            }
        }
    }
    without_citations.push_str(rest);
    without_citations
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The [`fingerprint`]s of the sentences of `text`.
pub(crate) fn sentence_fingerprints(text: &str) -> impl Iterator<Item = String> + '_ {
    sentence_spans(text)
        .into_iter()
        .map(move |span| fingerprint(&text[span]))
        .filter(|f| !f.is_empty())
}

/// Abbreviations after which a period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "fig", "eq", "no", "approx", "cf",
    "al", "st",
];

/// Splits `text` into sentence byte ranges (trimmed, never empty).
///
/// A sentence ends at `.`, `!` or `?` (plus closing quotes or brackets) followed by whitespace and
/// an uppercase letter, digit or opening quote, unless the word before the period is a known
/// abbreviation or a single letter. Line structure counts too: a blank line, a line ending in `:`
/// and a line starting a list item (`- `, `* `, `+ `, `1. `) each end the sentence before.
pub(crate) fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let boundary = match c {
            b'.' | b'!' | b'?' => terminal_end(text, i),
            b'\n' => line_break_ends_sentence(text, i).then_some(i),
            _ => None,
        };
        if let Some(end) = boundary {
            push_trimmed(text, start..end, &mut spans);
            start = end;
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    push_trimmed(text, start..text.len(), &mut spans);
    spans
}

/// If the terminal punctuation at `at` ends a sentence, the byte offset just after it (and after
/// any closing quotes or brackets).
fn terminal_end(text: &str, at: usize) -> Option<usize> {
    let rest = &text[at + 1..];
    let closing = rest
        .char_indices()
        .find(|&(_, c)| !matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '*' | '_'))
        .map_or(rest.len(), |(offset, _)| offset);
    let end = at + 1 + closing;
    let after = &text[end..];
    let Some(next_char) = after.chars().next() else {
        return Some(end);
    };
    if !next_char.is_whitespace() {
        return None;
    }
    let Some(following) = after.trim_start().chars().next() else {
        return Some(end);
    };
    if !(following.is_uppercase()
        || following.is_ascii_digit()
        || matches!(
            following,
            '"' | '\'' | '(' | '[' | '“' | '‘' | '*' | '-' | '`'
        ))
    {
        return None;
    }
    if text.as_bytes()[at] == b'.' {
        let word_start = text[..at]
            .rfind(|c: char| c.is_whitespace() || c == '(')
            .map_or(0, |p| p + 1);
        let word = text[word_start..at].to_lowercase();
        let is_initial = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
        if is_initial || ABBREVIATIONS.contains(&word.as_str()) {
            return None;
        }
    }
    Some(end)
}

/// Whether the newline at `at` ends the current sentence because of line structure.
fn line_break_ends_sentence(text: &str, at: usize) -> bool {
    let line_before = text[..at].rsplit('\n').next().unwrap_or("");
    let line_after = text[at + 1..].split('\n').next().unwrap_or("");
    line_before.trim_end().ends_with(':')
        || line_after.trim().is_empty()
        || is_list_item(line_after)
}

/// Whether a line starts a bullet or numbered list item.
pub(crate) fn is_list_item(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with("- ") || line.starts_with("* ") || line.starts_with("+ ") {
        return true;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") "))
}

fn push_trimmed(text: &str, range: Range<usize>, spans: &mut Vec<Range<usize>>) {
    let slice = &text[range.clone()];
    let leading = slice.len() - slice.trim_start().len();
    let trailing = slice.len() - slice.trim_end().len();
    if leading + trailing < slice.len() {
        spans.push(range.start + leading..range.end - trailing);
    }
}

/// Splits `text` into pieces of at most `max` bytes, preferring to cut at whitespace.
///
/// For pathological input (one enormous line or sentence) so no chunk grows without bound.
pub(crate) fn hard_split(text: &str, max: usize) -> Vec<Range<usize>> {
    let max = max.max(16);
    let mut pieces = Vec::new();
    let mut start = 0;
    while text.len() - start > max {
        let mut cut = start + max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = text[start..cut].rfind(char::is_whitespace) {
            if space > max / 2 {
                cut = start + space;
            }
        }
        if cut == start {
            // A single character wider than `max`: take it whole rather than loop forever.
            cut = start + text[start..].chars().next().map_or(1, char::len_utf8);
        }
        push_trimmed(text, start..cut, &mut pieces);
        start = cut;
    }
    push_trimmed(text, start..text.len(), &mut pieces);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        sentence_spans(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn analyzer_stems_lowercases_and_drops_stop_words() {
        assert_eq!(analyze("How do Models LEARN?"), vec!["model", "learn"]);
        assert_eq!(analyze("learning learned learns"), vec!["learn"; 3]);
        assert_eq!(analyze("Naïve networks"), vec!["naiv", "network"]);
        assert!(analyze("what is it").is_empty());
    }

    #[test]
    fn acronyms_are_expanded_in_queries() {
        assert_eq!(
            expand_acronyms("What is ML?"),
            "What is ML? machine learning"
        );
        assert_eq!(
            expand_acronyms("LLMs and kNN"),
            "LLMs and kNN large language model k-nearest neighbors"
        );
        assert_eq!(
            expand_acronyms("html is not an acronym here"),
            "html is not an acronym here"
        );
        assert!(
            query_terms("What is ML?").contains(&"machin".to_string())
                || query_terms("What is ML?").len() >= 2
        );
    }

    #[test]
    fn query_terms_are_distinct_and_skip_filler() {
        assert_eq!(
            query_terms("Tell me more about neural networks and networks"),
            vec!["neural", "network"]
        );
        assert_eq!(
            query_terms("How long can I keep cooked rice?"),
            vec!["keep", "cook", "rice"]
        );
        assert!(query_terms("Keep going").is_empty());
        assert_eq!(query_terms("How many layers, and how long?"), vec!["layer"]);
        assert_eq!(query_terms("regularisation"), query_terms("regularization"));
    }

    #[test]
    fn splits_sentences_but_not_abbreviations_or_decimals() {
        let text = "Models learn, e.g. by gradient descent. The rate is 0.01 here! Why? \
                    Ask Dr. Smith (see fig. 3).";
        assert_eq!(
            sentences(text),
            vec![
                "Models learn, e.g. by gradient descent.",
                "The rate is 0.01 here!",
                "Why?",
                "Ask Dr. Smith (see fig. 3)."
            ]
        );
    }

    #[test]
    fn list_items_and_colons_end_sentences() {
        let text =
            "Common examples include:\n- Spam filters\n- Translation between languages\n\nDone";
        assert_eq!(
            sentences(text),
            vec![
                "Common examples include:",
                "- Spam filters",
                "- Translation between languages",
                "Done"
            ]
        );
    }

    #[test]
    fn wrapped_lines_stay_in_one_sentence() {
        let text = "A sentence that wraps\nonto the next line. Then another.";
        assert_eq!(
            sentences(text),
            vec![
                "A sentence that wraps\nonto the next line.",
                "Then another."
            ]
        );
    }

    #[test]
    fn fingerprints_ignore_case_markup_and_citations() {
        assert_eq!(
            fingerprint("Same **words**. [2]"),
            fingerprint("same WORDS.")
        );
        assert_eq!(fingerprint("Keep [this] text"), "keepthistext");
        let prints: Vec<String> = sentence_fingerprints("One here. [1] Two there. [2]").collect();
        assert_eq!(prints, vec!["onehere", "twothere"]);
    }

    #[test]
    fn hard_split_respects_limit_and_char_boundaries() {
        let text = "ééé ".repeat(100);
        let pieces = hard_split(&text, 50);
        assert!(pieces.len() > 5);
        for piece in &pieces {
            assert!(piece.len() <= 50);
            assert!(!text[piece.clone()].trim().is_empty());
        }
        assert_eq!(hard_split("short", 50), vec![0..5]);
    }
}
