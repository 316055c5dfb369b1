//! One spelling for British and American words, so "regularisation" finds "regularization" and
//! "colour" finds "color".
//!
//! A token filter between lowercasing and stemming: it rewrites the British endings `-ise`,
//! `-isation`, `-yse`, `-our` (and their inflections) to the American ones. It is applied to
//! documents and questions alike, so a rewrite that is wrong for some word ("promise" becomes
//! "promize") costs nothing: both sides say "promize". Only a collision with another real word
//! could hurt, and short words, where those hide, are left alone.

use std::mem;

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

/// Words shorter than this keep their spelling ("rise", "wise", "hour", "four").
const MIN_LEN: usize = 6;

/// British endings and their American forms, longest first.
const ENDINGS: &[(&str, &str)] = &[
    ("isations", "izations"),
    ("isation", "ization"),
    ("ising", "izing"),
    ("isers", "izers"),
    ("ised", "ized"),
    ("iser", "izer"),
    ("ises", "izes"),
    ("ise", "ize"),
    ("ysing", "yzing"),
    ("ysed", "yzed"),
    ("yses", "yzes"),
    ("yse", "yze"),
    ("ours", "ors"),
    ("our", "or"),
];

/// The American spelling of a lowercase word, or `None` when it has none of the endings.
pub(crate) fn americanize(word: &str) -> Option<String> {
    if word.len() < MIN_LEN || !word.is_ascii() {
        return None;
    }
    ENDINGS.iter().find_map(|(british, american)| {
        word.strip_suffix(british)
            .filter(|stem| stem.len() >= 3)
            .map(|stem| format!("{stem}{american}"))
    })
}

/// The token filter; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AmericanSpelling;

impl TokenFilter for AmericanSpelling {
    type Tokenizer<T: Tokenizer> = AmericanSpellingFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        AmericanSpellingFilter { tokenizer }
    }
}

#[derive(Clone)]
pub(crate) struct AmericanSpellingFilter<T> {
    tokenizer: T,
}

impl<T: Tokenizer> Tokenizer for AmericanSpellingFilter<T> {
    type TokenStream<'a> = AmericanSpellingStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        AmericanSpellingStream {
            tail: self.tokenizer.token_stream(text),
        }
    }
}

pub(crate) struct AmericanSpellingStream<T> {
    tail: T,
}

impl<T: TokenStream> TokenStream for AmericanSpellingStream<T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        if let Some(mut american) = americanize(&self.tail.token().text) {
            mem::swap(&mut self.tail.token_mut().text, &mut american);
        }
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn british_endings_become_american() {
        let cases = [
            ("regularisation", Some("regularization")),
            ("optimiser", Some("optimizer")),
            ("optimisers", Some("optimizers")),
            ("memorising", Some("memorizing")),
            ("generalise", Some("generalize")),
            ("analyse", Some("analyze")),
            ("colour", Some("color")),
            ("behaviour", Some("behavior")),
            ("rise", None),
            ("hour", None),
            ("optimizer", None),
            ("naïvise", None),
        ];
        for (word, american) in cases {
            assert_eq!(americanize(word).as_deref(), american, "{word}");
        }
    }
}
