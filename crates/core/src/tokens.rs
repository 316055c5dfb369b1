//! The one token estimate, and the one rule for which recent messages fit a token budget.
//!
//! Token counts are estimated: about four characters per token (rounded up), which is close
//! for English with BPE tokenizers and needs no tokenizer tables, plus
//! [`MESSAGE_OVERHEAD_TOKENS`] of framing (role marker, separators) per message. Memory's
//! history window and the LLM prompt's history window both budget with it; a caller with an
//! exact tokenizer for its model plugs in a [`TokenCounter`].

/// Tokens of framing each message costs on top of its text (role marker, separators).
pub const MESSAGE_OVERHEAD_TOKENS: usize = 4;

/// Estimated tokens of `text`: one per four characters, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Counts tokens of a text, to fit history into a model's context budget.
///
/// [`CharEstimate`] is the built-in, tokenizer-free estimate; plug in an exact tokenizer for a
/// specific model when the budget is tight.
pub trait TokenCounter: Send + Sync {
    /// The number of tokens `text` takes.
    fn count(&self, text: &str) -> usize;
}

/// Estimates one token per four characters (rounded up): [`estimate_tokens`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CharEstimate;

impl TokenCounter for CharEstimate {
    fn count(&self, text: &str) -> usize {
        estimate_tokens(text)
    }
}

/// The newest items whose costs fit `budget` together, oldest first.
///
/// Whole items only: walking back from the newest, the first item that does not fit ends
/// the window, so the window is always a contiguous tail of `items`.
pub fn recent_window<T, I>(items: I, budget: usize, mut cost: impl FnMut(&T) -> usize) -> Vec<T>
where
    I: DoubleEndedIterator<Item = T>,
{
    let mut used = 0;
    let mut window = Vec::new();
    for item in items.rev() {
        let item_cost = cost(&item);
        if used + item_cost > budget {
            break;
        }
        used += item_cost;
        window.push(item);
    }
    window.reverse();
    window
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_rounds_up_per_character() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("éééé"), 1);
        assert_eq!(CharEstimate.count("abcdefgh"), 2);
    }

    #[test]
    fn window_is_the_newest_contiguous_tail_that_fits() {
        let costs = [1, 10, 3, 4];
        let window = |budget| recent_window(costs.iter(), budget, |c| **c);
        assert_eq!(window(17), vec![&10, &3, &4]);
        // The 1 would still fit, but the 10 before it does not: the window ends there.
        assert_eq!(window(8), vec![&3, &4]);
        assert_eq!(window(3), Vec::<&usize>::new());
        assert_eq!(window(18).len(), 4);
    }
}
