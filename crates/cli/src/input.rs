//! Reading a message from standard input within the size limit.

use std::io::Read;

use ragchat_memory::MemoryError;

/// Reads standard input as one message of at most `limit` bytes.
///
/// Reads at most `limit + 1` bytes, so an oversized (or endless) input is refused as
/// soon as it is known to be too long, without reading the rest.
///
/// # Errors
/// `InvalidInput` (exit code 2) when the input is over `limit` bytes or not UTF-8;
/// the read error when standard input cannot be read.
pub(crate) fn read_stdin_message(limit: usize) -> anyhow::Result<String> {
    read_message(std::io::stdin().lock(), limit)
}

fn read_message(input: impl Read, limit: usize) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    input
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("reading the message from standard input: {e}"))?;
    if bytes.len() > limit {
        return Err(MemoryError::InvalidInput(format!(
            "the message on standard input is over the limit of {limit} bytes (--max-message-bytes); nothing was stored"
        ))
        .into());
    }
    String::from_utf8(bytes).map_err(|_| {
        MemoryError::InvalidInput(
            "the message on standard input is not UTF-8 text; nothing was stored".to_string(),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_no_further() {
        assert_eq!(read_message(&b"hello"[..], 5).unwrap(), "hello");
        let err = read_message(&b"hello!"[..], 5).unwrap_err();
        assert!(err.to_string().contains("limit of 5 bytes"), "{err}");
        // An endless input is refused after limit + 1 bytes.
        let endless = std::io::repeat(b'x');
        assert!(read_message(endless, 1000).is_err());
        assert!(read_message(&[0xff, 0xfe][..], 10).is_err());
    }
}
