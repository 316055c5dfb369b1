//! What a question asks for, and which sentences do that.
//!
//! The extractive answerer quotes; it cannot rephrase. What it can do is prefer, among the
//! sentences that share the question's words, the ones that answer its kind of question: the
//! sentence that says what a thing *is* for "What is X?", the one with the steps or the option
//! for "How do I ...?", the one giving a reason for "Why ...?". Both sides are recognised from
//! surface cues (leading words, copulas, causal connectives): cheap, predictable, and right
//! often enough to break ties between sentences that match equally well.

use crate::text::words;

/// The kind of answer a question wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// "What is X?", "What about X?", "Define X", "X?": the sentence saying what X is.
    Definition,
    /// "How do I ...?", "How to ...", "How can I prevent it?": steps, commands, options.
    HowTo,
    /// "Why ...?", "What causes ...?": a reason.
    Why,
    /// "What is the difference between X and Y?", "X vs Y": a contrast naming both.
    Comparison,
    /// "Should I ...?", "Can I ...?", "Is X ...?": a statement about exactly that.
    YesNo,
    /// "What are the types of ...?", "Which ... are there?", "Examples of ...": an enumeration.
    List,
    /// "How long ...?", "How much ...?", "What temperature ...?": a sentence with a number.
    Quantity,
    /// Anything else: plain relevance decides.
    Other,
}

const AUXILIARIES: &[&str] = &[
    "should", "can", "could", "is", "are", "was", "were", "do", "does", "did", "will", "would",
    "must", "may", "might", "has", "have", "shall", "am",
];
const LIST_NOUNS: &[&str] = &[
    "types",
    "kinds",
    "examples",
    "ways",
    "options",
    "steps",
    "methods",
    "techniques",
    "forms",
    "sorts",
    "main",
    "common",
    "list",
];
const COMPARISON_CUES: &[&str] = &[
    "difference",
    "differences",
    "differ",
    "vs",
    "versus",
    "compare",
    "compared",
    "comparison",
    "better",
    "worse",
    "between",
];

/// Classifies a question by its phrasing.
pub(crate) fn intent_of(question: &str) -> Intent {
    let words: Vec<String> = words(question).collect();
    let Some(first) = words.first().map(String::as_str) else {
        return Intent::Other;
    };
    let second = words.get(1).map_or("", String::as_str);
    let has = |w: &str| words.iter().any(|x| x == w);
    // A leading "and", "but" or "so" only links the question to the previous one.
    let (first, second, rest) = if matches!(first, "and" | "but" | "so" | "also" | "then") {
        (
            second,
            words.get(2).map_or("", String::as_str),
            words.get(2..).unwrap_or(&[]),
        )
    } else {
        (first, second, words.get(1..).unwrap_or(&[]))
    };
    if COMPARISON_CUES.iter().any(|cue| has(cue)) && (has("and") || has("or") || has("vs")) {
        return Intent::Comparison;
    }
    if first == "why" || (first == "what" && matches!(second, "causes" | "makes")) {
        return Intent::Why;
    }
    let quantity_word = |w: &str| {
        matches!(
            w,
            "long" | "much" | "many" | "often" | "far" | "big" | "old" | "soon" | "hot" | "large"
        )
    };
    if (first == "how" && quantity_word(second))
        || (first == "what" && matches!(second, "temperature" | "ratio" | "size"))
    {
        return Intent::Quantity;
    }
    if first == "how" {
        let asks_method = matches!(second, "do" | "can" | "should" | "would" | "to" | "could")
            && rest
                .get(1)
                .is_some_and(|w| matches!(w.as_str(), "i" | "you" | "we" | "one"));
        return if asks_method || second == "to" {
            Intent::HowTo
        } else {
            Intent::Other
        };
    }
    if matches!(first, "what" | "which") && rest.iter().any(|w| LIST_NOUNS.contains(&w.as_str())) {
        return Intent::List;
    }
    if matches!(first, "list" | "name") || (first == "give" && has("examples")) {
        return Intent::List;
    }
    if first == "what" && matches!(second, "should" | "do" | "can") && has("i") {
        return Intent::HowTo;
    }
    if matches!(
        first,
        "what" | "what's" | "whats" | "who" | "define" | "meaning"
    ) || matches!((first, second), ("tell", "me"))
    {
        return Intent::Definition;
    }
    if AUXILIARIES.contains(&first) {
        return Intent::YesNo;
    }
    if words.len() <= 4 && !question.trim_end().ends_with('.') {
        // "Overfitting?", "Dropout in CNNs?": a bare topic asks what it is.
        return Intent::Definition;
    }
    Intent::Other
}

/// Small families of words that ask for the same thing in how-to questions, as documents say
/// them: a question asking how to "prevent" something is answered by a sentence on what
/// "reduces" or "cures" it, "pick" by "choose", "keep" (rice) by "store", "show" by "print".
/// They are the verbs of asking what to do, so they also weigh less than what they act on. Only unambiguous
/// families are listed: a wide thesaurus would bring back the one-shared-word answers this
/// module exists to avoid.
const FAMILIES: &[&[&str]] = &[
    &[
        "prevent",
        "avoid",
        "stop",
        "reduce",
        "discourage",
        "cure",
        "fight",
        "combat",
        "counter",
        "mitigate",
        "limit",
        "fix",
        "remedy",
        "guard",
        "protect",
    ],
    &["pick", "choose", "select", "decide"],
    &["keep", "store", "storing"],
    &["search", "find", "look", "locate"],
    &["show", "display", "print"],
];

/// The analyzed (stemmed) words of the family of `term`, other than `term` itself; empty when
/// it has none.
pub(crate) fn related_terms(term: &str) -> &'static [String] {
    static STEMMED: std::sync::OnceLock<Vec<Vec<String>>> = std::sync::OnceLock::new();
    let families = STEMMED.get_or_init(|| {
        FAMILIES
            .iter()
            .map(|family| {
                let mut stems: Vec<String> = family
                    .iter()
                    .flat_map(|w| crate::text::analyze(w))
                    .collect();
                stems.dedup();
                stems
            })
            .collect()
    });
    families
        .iter()
        .find(|family| family.iter().any(|s| s == term))
        .map_or(&[], Vec::as_slice)
}

/// Surface features of a sentence that tell what kind of answer it gives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SentenceCues {
    /// Says what something is: a subject, then "is", "are", "means", "refers to", "happens
    /// when" within its first words.
    pub defines: bool,
    /// Gives a reason: "because", "since", "so that", "due to", "the reason".
    pub explains: bool,
    /// Tells what to do: starts with an imperative (perhaps after a clause: "To season a pan,
    /// rub ..."), names a command-line option, or names the techniques for it.
    pub instructs: bool,
    /// Contrasts: "whereas", "while", "unlike", "instead", "than".
    pub contrasts: bool,
    /// A list item, or a sentence enumerating with commas or "such as".
    pub enumerates: bool,
    /// Gives a number: digits or a number word ("six minutes", "10 g per litre").
    pub quantifies: bool,
}

const COPULAS: &[&str] = &[
    "is",
    "are",
    "means",
    "mean",
    "refers",
    "describes",
    "happens",
    "occurs",
    "denotes",
];
const CAUSAL: &[&str] = &[
    "because",
    "since",
    "so",
    "due",
    "reason",
    "causes",
    "cause",
    "therefore",
    "thus",
    "otherwise",
];
const CONTRAST: &[&str] = &[
    "whereas", "while", "unlike", "instead", "than", "but", "however", "contrast", "opposite",
];
/// Verbs that start instructions in how-to notes and reference pages.
const IMPERATIVES: &[&str] = &[
    "use",
    "add",
    "put",
    "set",
    "run",
    "try",
    "keep",
    "make",
    "start",
    "stop",
    "take",
    "check",
    "pass",
    "call",
    "install",
    "remove",
    "reduce",
    "increase",
    "collect",
    "apply",
    "choose",
    "split",
    "train",
    "bring",
    "cook",
    "boil",
    "simmer",
    "bake",
    "stir",
    "whisk",
    "rinse",
    "cool",
    "dry",
    "wash",
    "rub",
    "scrub",
    "lower",
    "lift",
    "leave",
    "cover",
    "salt",
    "season",
    "serve",
    "melt",
    "pour",
    "crack",
    "peel",
    "knead",
    "hone",
    "sharpen",
    "curl",
    "dress",
    "freeze",
    "strain",
    "skim",
    "scoop",
    "store",
    "eat",
    "reheat",
    "never",
    "always",
    "don't",
    "do",
    "avoid",
    "give",
    "print",
    "list",
    "show",
    "sort",
    "search",
    "create",
    "extract",
    "copy",
    "change",
    "write",
    "read",
    "type",
    "enter",
    "press",
    "open",
    "save",
    "feed",
    "tune",
    "scale",
    "normalize",
    "normalise",
    "standardize",
    "measure",
    "compare",
    "judge",
    "watch",
    "shorten",
    "wipe",
    "repeat",
];

impl SentenceCues {
    /// The cues of `sentence` (already cleaned of markup); `list_item` when it was a bullet.
    pub(crate) fn of(sentence: &str, list_item: bool) -> Self {
        let words: Vec<String> = words(sentence).collect();
        let first = words.first().map_or("", String::as_str);
        let copula_at = words
            .iter()
            .take(9)
            .position(|w| COPULAS.contains(&w.as_str()));
        let defines = copula_at.is_some_and(|at| at >= 1 && !is_pronoun(first));
        let explains = words.iter().any(|w| CAUSAL.contains(&w.as_str()))
            || sentence.contains("so that")
            || sentence.contains("in order to");
        let option = sentence.split_whitespace().any(|w| {
            w.len() > 1 && w.starts_with('-') && w[1..].starts_with(char::is_alphanumeric)
        });
        // "To season a pan, rub ...", "If rust appears, scrub ...": the instruction follows a
        // leading clause.
        let after_clause = matches!(
            first,
            "to" | "if" | "when" | "first" | "then" | "next" | "finally" | "before" | "after"
        )
        .then(|| sentence.split_once(", "))
        .flatten()
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_lowercase);
        // "Regularization is the family of techniques that ...": names the ways to do it.
        const METHOD_NOUNS: [&str; 8] = [
            "technique",
            "techniques",
            "method",
            "methods",
            "ways",
            "tool",
            "tools",
            "cure",
        ];
        let names_methods = words.iter().any(|w| METHOD_NOUNS.contains(&w.as_str()));
        let instructs = IMPERATIVES.contains(&first)
            || after_clause.is_some_and(|w| IMPERATIVES.contains(&w.as_str()))
            || option
            || names_methods;
        let contrasts = words.iter().any(|w| CONTRAST.contains(&w.as_str()));
        let enumerates = list_item
            || sentence.matches(',').count() >= 2
            || sentence.contains("such as")
            || sentence.contains(" include");
        const NUMBER_WORDS: [&str; 14] = [
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "twelve", "half", "dozen", "hundred",
        ];
        let quantifies = sentence.contains(|c: char| c.is_ascii_digit())
            || words.iter().any(|w| NUMBER_WORDS.contains(&w.as_str()));
        SentenceCues {
            quantifies,
            defines,
            explains,
            instructs,
            contrasts,
            enumerates,
        }
    }

    /// Whether the sentence gives the kind of answer `intent` wants.
    pub(crate) fn serves(self, intent: Intent) -> bool {
        match intent {
            Intent::Definition => self.defines,
            Intent::HowTo => self.instructs,
            Intent::Why => self.explains,
            Intent::Comparison => self.contrasts,
            Intent::List => self.enumerates,
            Intent::Quantity => self.quantifies,
            Intent::YesNo | Intent::Other => false,
        }
    }
}

fn is_pronoun(word: &str) -> bool {
    matches!(
        word,
        "it" | "this" | "that" | "these" | "those" | "they" | "there" | "here" | "which" | "what"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_what_a_question_asks() {
        let cases = [
            ("What is overfitting?", Intent::Definition),
            ("What about overfitting?", Intent::Definition),
            ("Overfitting?", Intent::Definition),
            ("Tell me about dropout", Intent::Definition),
            ("How do I prevent it?", Intent::HowTo),
            ("How can I find hidden files?", Intent::HowTo),
            ("How to season a cast-iron pan", Intent::HowTo),
            ("How does it learn?", Intent::Other),
            ("Why?", Intent::Why),
            ("Why does stock go cloudy?", Intent::Why),
            (
                "What is the difference between L1 and L2 regularization?",
                Intent::Comparison,
            ),
            ("Bagging vs boosting?", Intent::Comparison),
            ("Should I add cream?", Intent::YesNo),
            ("And is it safe?", Intent::YesNo),
            ("What are the main types of machine learning?", Intent::List),
            ("What should I do about rust?", Intent::HowTo),
            ("How long do I boil a soft-boiled egg?", Intent::Quantity),
            ("How much salt goes in the pasta water?", Intent::Quantity),
        ];
        for (question, intent) in cases {
            assert_eq!(intent_of(question), intent, "{question:?}");
        }
    }

    #[test]
    fn recognises_what_a_sentence_does() {
        let defines = SentenceCues::of("Overfitting happens when a model memorises noise.", false);
        assert!(defines.defines && !defines.instructs);
        assert!(!SentenceCues::of("It is harmless, but tastes of sulphur.", false).defines);
        assert!(SentenceCues::of("Never add cream or milk to scrambled eggs.", false).instructs);
        assert!(
            SentenceCues::of("To season a pan, rub a thin film of oil over it.", false).instructs
        );
        assert!(
            SentenceCues::of("If rust appears, scrub it off with steel wool.", false).instructs
        );
        assert!(!SentenceCues::of("If rust appears, the pan is ruined.", false).instructs);
        assert!(
            SentenceCues::of("-a, --all do not ignore entries starting with .", false).instructs
        );
        assert!(SentenceCues::of("Stock turns cloudy because it boils.", false).explains);
        assert!(
            SentenceCues::of("L1 drives weights to zero, whereas L2 shrinks them.", false)
                .serves(Intent::Comparison)
        );
    }

    #[test]
    fn families_are_found_by_any_member_as_the_analyzer_stems_it() {
        let prevent = related_terms("prevent");
        assert!(prevent.iter().any(|t| t == "reduc"), "{prevent:?}");
        assert!(prevent.iter().any(|t| t == "discourag"), "{prevent:?}");
        assert_eq!(related_terms("reduc"), prevent);
        assert!(related_terms("choos").iter().any(|t| t == "pick"));
        assert!(related_terms("store").iter().any(|t| t == "keep"));
        assert!(related_terms("overfit").is_empty());
    }
}
