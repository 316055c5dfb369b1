//! The pseudo-English of the search and recall benchmarks: a vocabulary whose word
//! frequencies fall off like natural text's (Zipf: rank r with weight 1/r), the 100 most
//! frequent words English function words, the rest made-up content words; and a
//! fixed-seed generator, so that every run writes and asks the same.

/// Words of the vocabulary.
const VOCABULARY: usize = 5000;
/// The most frequent words: English function words, which search drops.
const FUNCTION_WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "as", "with", "his", "they", "i", "at", "be", "this", "have", "from", "or", "had", "by",
    "but", "what", "some", "we", "can", "were", "which", "their", "if", "do", "will", "each",
    "about", "how", "up", "out", "them", "then", "she", "many", "so", "these", "her", "would",
    "has", "more", "him", "two", "been", "who", "its", "now", "did", "down", "only", "my", "over",
    "me", "our", "your", "just", "very", "than", "there", "when", "where", "why", "all", "any",
    "both", "few", "most", "other", "such", "no", "not", "own", "same", "too", "should", "into",
    "through", "during", "before", "after", "above", "below", "again", "further", "once", "here",
    "off",
];

/// A fixed-seed generator: the same messages and queries on every run.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The vocabulary (pronounceable made-up words) and its cumulative Zipf weights.
pub(super) struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Vocabulary {
    pub(super) fn new() -> Self {
        const ONSETS: &[&str] = &[
            "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st", "tr",
        ];
        const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ou"];
        let mut rng = Lcg(7);
        let mut seen = std::collections::HashSet::new();
        let mut words: Vec<String> = FUNCTION_WORDS.iter().map(|w| w.to_string()).collect();
        while words.len() < VOCABULARY {
            let syllables = 2 + rng.below(2);
            let word: String = (0..syllables)
                .map(|_| {
                    format!(
                        "{}{}",
                        ONSETS[rng.below(ONSETS.len())],
                        VOWELS[rng.below(VOWELS.len())]
                    )
                })
                .collect();
            if seen.insert(word.clone()) {
                words.push(word);
            }
        }
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|rank| {
                total += 1.0 / rank as f64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    }

    /// A word drawn by frequency (rank r with weight 1/r).
    fn frequent(&self, rng: &mut Lcg) -> &str {
        &self.words[self.rank(rng)]
    }

    fn rank(&self, rng: &mut Lcg) -> usize {
        let total = self.cumulative[VOCABULARY - 1];
        let x = (rng.next() as f64 / (1u64 << 31) as f64) * total;
        self.cumulative
            .partition_point(|&c| c < x)
            .min(VOCABULARY - 1)
    }

    /// A content word drawn by frequency.
    pub(super) fn frequent_content(&self, rng: &mut Lcg) -> &str {
        loop {
            let rank = self.rank(rng);
            if rank >= FUNCTION_WORDS.len() {
                return &self.words[rank];
            }
        }
    }

    /// A content word drawn uniformly (mostly rare ones).
    pub(super) fn rare(&self, rng: &mut Lcg) -> &str {
        let n = FUNCTION_WORDS.len();
        &self.words[n + rng.below(VOCABULARY - n)]
    }

    /// A message of 20 to 60 words (about 300 bytes).
    pub(super) fn message(&self, rng: &mut Lcg) -> String {
        let n = 20 + rng.below(41);
        let words: Vec<&str> = (0..n).map(|_| self.frequent(rng)).collect();
        words.join(" ")
    }
}
