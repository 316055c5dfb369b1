//! The checks a message passes before a turn does any work, with the words users are
//! told when it does not. Interfaces run them first to answer at once (the HTTP API
//! with 413 or 400); the turn itself validates again through the memory crate.

/// Why a message is refused before any work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageRejection {
    /// Over the size limit.
    #[error("message content is {bytes} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// The message's size in bytes.
        bytes: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Empty or only whitespace.
    #[error("message content is empty")]
    Empty,
}

/// Checks a message of `content` against a size limit of `limit` bytes; the size is
/// checked first.
///
/// # Errors
/// [`MessageRejection`] saying what is wrong; nothing has been read or written.
pub fn check_message(content: &str, limit: usize) -> Result<(), MessageRejection> {
    if content.len() > limit {
        return Err(MessageRejection::TooLarge {
            bytes: content.len(),
            limit,
        });
    }
    if content.trim().is_empty() {
        return Err(MessageRejection::Empty);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_checked_before_emptiness() {
        assert_eq!(check_message("hi", 10), Ok(()));
        assert_eq!(check_message("  \n", 10), Err(MessageRejection::Empty));
        let too_large = check_message(&" ".repeat(11), 10).unwrap_err();
        assert_eq!(
            too_large.to_string(),
            "message content is 11 bytes; the limit is 10 bytes"
        );
    }
}
