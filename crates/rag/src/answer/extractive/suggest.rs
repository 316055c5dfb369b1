//! Example questions drawn from the loaded documents, for "what can you do?" and for a new
//! conversation's empty view.
//!
//! A good example is one the offline answerer answers well, so each candidate is made from a
//! document's opening (most documents open by saying what their subject is: "Overfitting
//! happens when ...", "A decision tree is a model that ...") and then checked by asking it: it
//! is kept only when retrieval ranks its own document first and the extractive answerer quotes
//! that document instead of declining.

use std::collections::BTreeMap;

use tantivy::DocAddress;

use super::ExtractiveAnswerer;
use crate::index::Index;
use crate::retrieve::{load_hit, Hit};
use crate::text::{sentence_spans, words};

/// Chunks read at most when looking for document openings: bounds the cost on a huge corpus
/// (the examples then come from the documents met first).
const MAX_SCANNED_CHUNKS: u32 = 20_000;
/// A subject longer than this many words is a clause, not a name ("Putting a model in
/// production and keeping it healthy means ...").
const MAX_SUBJECT_WORDS: usize = 5;

/// Up to `n` questions about the loaded documents that the offline answerer answers well,
/// spread over the documents (in path order) and stable for the same corpus.
///
/// Each question is about one document ("What is overfitting?", "What are evaluation
/// metrics?", or "Tell me about soft-boiled eggs." for a document that does not open with a
/// definition) and was checked by answering it. Fewer than `n` come back when the corpus has
/// fewer documents that yield one; an index that cannot be read yields none (logged), since
/// examples are a courtesy and never worth failing a turn or a page for.
pub fn example_questions(index: &Index, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let openings = match document_openings(index) {
        Ok(openings) => openings,
        Err(error) => {
            tracing::warn!(%error, "cannot read the index for example questions");
            return Vec::new();
        }
    };
    let retriever = index.retriever();
    let answerer = ExtractiveAnswerer::new().with_term_stats(index);
    let mut examples = Vec::with_capacity(n);
    for at in spread(openings.len(), n) {
        let opening = &openings[at];
        let Some(question) = question_for(opening) else {
            continue;
        };
        if answers_well(&retriever, &answerer, &question, &opening.path) {
            examples.push(question);
            if examples.len() == n {
                break;
            }
        }
    }
    examples
}

/// The first chunk of every document (the smallest `line_start` per path), in path order.
fn document_openings(index: &Index) -> crate::Result<Vec<Hit>> {
    let searcher = index.searcher();
    let fields = index.fields();
    let mut openings: BTreeMap<String, Hit> = BTreeMap::new();
    let mut scanned = 0;
    'segments: for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
        let ordinal = u32::try_from(ordinal).unwrap_or(u32::MAX);
        for doc in segment.doc_ids_alive() {
            if scanned == MAX_SCANNED_CHUNKS {
                break 'segments;
            }
            scanned += 1;
            let hit = load_hit(&searcher, &fields, DocAddress::new(ordinal, doc), 0.0)?;
            let earlier = openings
                .get(&hit.path)
                .is_some_and(|kept| kept.line_start <= hit.line_start);
            if !earlier {
                openings.insert(hit.path.clone(), hit);
            }
        }
    }
    Ok(openings.into_values().collect())
}

/// Positions `0..len` in an order that spreads the first `n` over the whole range: with 33
/// documents and 3 examples, documents 0, 11 and 22 are tried first, then their neighbours.
fn spread(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let stride = (len / n.max(1)).max(1);
    (0..stride).flat_map(move |offset| (offset..len).step_by(stride))
}

/// A question about the document that `opening` starts: "What is X?" when its first sentence
/// defines X, else "Tell me about <title>." when the title is a plain topic.
fn question_for(opening: &Hit) -> Option<String> {
    let first = sentence_spans(&opening.text)
        .into_iter()
        .map(|span| &opening.text[span])
        .find(|s| !s.trim_start().starts_with('#'))?;
    if let Some(question) = definition_question(first, &opening.text) {
        return Some(question);
    }
    let title = opening.title.trim().trim_end_matches(['?', '.', '!', ':']);
    let asks = words(title).next().is_some_and(|w| {
        matches!(
            w.as_str(),
            "what" | "how" | "why" | "when" | "where" | "who" | "which" | "should" | "can"
        )
    });
    if title.is_empty() || asks || title.split_whitespace().count() > 6 {
        return None;
    }
    Some(format!(
        "Tell me about {}.",
        lower_common_words(title, &opening.text)
    ))
}

/// "What is X?" for a sentence "X is ...", "X are ...", "X happens when ...", "X refers to ...".
fn definition_question(sentence: &str, context: &str) -> Option<String> {
    const LINKS: [(&str, &str); 6] = [
        (" is ", "is"),
        (" are ", "are"),
        (" happens when ", "is"),
        (" occurs when ", "is"),
        (" refers to ", "is"),
        (" describes ", "is"),
    ];
    let sentence = sentence.trim();
    let (cut, verb) = LINKS
        .iter()
        .filter_map(|(link, verb)| sentence.find(link).map(|at| (at, *verb)))
        .min_by_key(|(at, _)| *at)?;
    // "A convolutional neural network, or CNN, is ..." names its subject before the comma.
    let subject = sentence[..cut].split(',').next()?.trim();
    let count = subject.split_whitespace().count();
    if count == 0 || count > MAX_SUBJECT_WORDS {
        return None;
    }
    let first = words(subject).next()?;
    const NOT_SUBJECTS: [&str; 12] = [
        "it", "this", "that", "these", "those", "there", "they", "here", "which", "what", "we",
        "you",
    ];
    if NOT_SUBJECTS.contains(&first.as_str()) || subject.contains(['(', ')', '[', '`', '*']) {
        return None;
    }
    Some(format!(
        "What {verb} {}?",
        lower_common_words(subject, context)
    ))
}

/// `text` as it reads inside a sentence: capitalised words are lowered unless the document
/// writes them capitalised in mid-sentence too (names: "Bayes") or they are acronyms ("SVM"),
/// so "Overfitting and Regularization" becomes "overfitting and regularization" and "Naive
/// Bayes" becomes "naive Bayes".
pub(crate) fn lower_common_words(text: &str, context: &str) -> String {
    let names = names_in(context);
    let part = |word: &str| {
        let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
        let acronym = letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase());
        let inner_capital = word.chars().skip(1).any(char::is_uppercase);
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
        if acronym || inner_capital || names.contains(bare) {
            word.to_owned()
        } else {
            word.to_lowercase()
        }
    };
    // Hyphenated words by part: "Retrieval-Augmented" reads "retrieval-augmented".
    text.split(' ')
        .map(|word| word.split('-').map(part).collect::<Vec<_>>().join("-"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Capitalised words that `context` uses in mid-sentence: names, not sentence openers.
fn names_in(context: &str) -> std::collections::HashSet<&str> {
    let mut names = std::collections::HashSet::new();
    let mut previous: Option<char> = None;
    for piece in context.split_inclusive(char::is_whitespace) {
        let word = piece.trim();
        let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
        let mid_sentence =
            previous.is_some_and(|p| p.is_alphanumeric() || matches!(p, ',' | ';' | ')'));
        if mid_sentence && bare.chars().next().is_some_and(char::is_uppercase) {
            names.insert(bare);
        }
        if let Some(last) = word.chars().last() {
            previous = Some(last);
        }
    }
    names
}

/// Whether the offline path answers `question` from the document at `path`.
fn answers_well(
    retriever: &crate::Retriever,
    answerer: &ExtractiveAnswerer,
    question: &str,
    path: &str,
) -> bool {
    let Ok(retrieval) = retriever.search(question, &[], 3) else {
        return false;
    };
    if retrieval.hits.first().map(|h| h.path.as_str()) != Some(path) {
        return false;
    }
    let request = crate::AnswerRequest {
        question: question.to_owned(),
        history: Vec::new(),
        hits: retrieval.hits,
        recalled: Vec::new(),
    };
    let answer = answerer.compose(&request);
    answer.sources.first().map(|s| s.path.as_str()) == Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CorpusSource, Document, IngestOptions};

    fn document(path: &str, text: &str) -> Document {
        Document {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn definitions_and_titles_become_questions() {
        let ask = |first: &str| definition_question(first, "overfitting happens often");
        assert_eq!(
            ask("Overfitting happens when a model memorises the data."),
            Some("What is overfitting?".into())
        );
        assert_eq!(
            ask("A convolutional neural network, or CNN, is a model for images."),
            Some("What is a convolutional neural network?".into())
        );
        assert_eq!(ask("It is a model."), None);
        assert_eq!(
            ask("Putting a trained model into a real product safely is hard work."),
            None
        );
        assert_eq!(
            lower_common_words(
                "A Naive Bayes model, or NB",
                "Naive models use Bayes' rule."
            ),
            "a naive Bayes model, or NB"
        );
        let spread: Vec<usize> = spread(7, 3).collect();
        assert_eq!(spread, vec![0, 2, 4, 6, 1, 3, 5]);
    }

    #[test]
    fn examples_are_questions_the_offline_answerer_answers_from_their_document() {
        let data = tempfile::tempdir().expect("temp dir");
        let documents = vec![
            document(
                "eggs.md",
                "# Soft-boiled eggs\n\nA soft-boiled egg is an egg cooked in its shell until \
                 the white sets and the yolk stays runny. Lower cold eggs into boiling water \
                 and cook them for six minutes.\n",
            ),
            document(
                "bread.md",
                "# Sourdough bread\n\nSourdough bread is bread raised by a culture of wild \
                 yeast and lactic bacteria instead of baker's yeast. Feed the starter the day \
                 before you bake.\n",
            ),
            document(
                "knives.md",
                "# Kitchen knives\n\nKeep your knives sharp: a dull blade slips off the \
                 skin of a tomato and into your finger. Hone the edge before every use.\n",
            ),
            document(
                "pasta.md",
                "# Pasta\n\nPasta is a dough of durum wheat and water, shaped and dried. \
                 Salt the cooking water generously, about ten grams per litre.\n",
            ),
        ];
        let source = CorpusSource::Documents {
            name: "kitchen".into(),
            documents,
        };
        let (index, _) =
            Index::open_or_build(data.path(), &source, &IngestOptions::default(), &|_| {})
                .expect("indexes");
        let examples = example_questions(&index, 3);
        assert_eq!(
            examples,
            vec![
                "What is sourdough bread?",
                "What is a soft-boiled egg?",
                "Tell me about kitchen knives.",
            ]
        );
        let all = example_questions(&index, 10);
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.contains(&"What is pasta?".to_owned()), "{all:?}");
        assert!(example_questions(&index, 0).is_empty());
    }
}
