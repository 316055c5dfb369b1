//! Small families of verbs that ask for the same thing in how-to questions ("prevent",
//! "avoid", "reduce"), shared by retrieval (a question about avoiding overfitting also looks for
//! what reduces it) and the extractive answerer (which counts a family word for part of the
//! asked one, and weighs these verbs less than what they act on).

/// Small families of words that ask for the same thing in how-to questions, as documents say
/// them: a question asking how to "prevent" something is answered by a sentence on what
/// "reduces" or "cures" it, "pick" by "choose", "keep" (rice) by "store", "show" by "print".
/// They are the verbs of asking what to do, so they also weigh less than what they act on.
/// Only unambiguous families are listed: a wide thesaurus would bring back answers that share
/// one word, in another sense, with the question.
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

/// The analyzed (stemmed) words of the family of `term` (itself included); empty when it has
/// none.
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

#[cfg(test)]
mod tests {
    use super::*;

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
