//! `--retention`: how long an idle conversation is kept, the only thing besides a
//! person's delete that removes one.
//!
//! Parsed once in `main` (clap calls [`parse_retention`], so a bad value is a usage
//! error, exit 2). Every command that opens the conversation store runs one pass
//! before it does its work ([`run_first_pass`]), so what `sessions show` prints is
//! what retention leaves; `serve` also runs passes in the background.

use std::time::Duration;

use ragchat_memory::{MemoryError, SessionManager};

/// The `--retention` value: how long an idle conversation is kept; `None` = forever.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retention(pub(crate) Option<Duration>);

impl Retention {
    /// `--retention` as clap parses it (see [`parse_retention`]).
    ///
    /// # Errors
    /// As [`parse_retention`].
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        parse_retention(text).map(Retention)
    }
}

/// Largest retention accepted: 100 years, far past anything meant, and small enough
/// that every figure derived from it stays in range.
const MAX_SECS: u64 = 100 * 366 * 24 * 3600;

/// Parses `90d`, `12h`, `30m`, `30s` or plain seconds; `0` (in any unit) = keep
/// forever (`None`).
///
/// # Errors
/// A message saying what is accepted, for an empty, negative, fractional, unknown-unit
/// or out-of-range value.
pub(crate) fn parse_retention(text: &str) -> Result<Option<Duration>, String> {
    let explain = || {
        format!(
            "`{text}` is not a retention: use a whole number of days, hours, minutes or \
             seconds (90d, 12h, 30m, 30s, or plain seconds); 0 keeps conversations forever"
        )
    };
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&trimmed[..at], c.to_ascii_lowercase()),
        _ => (trimmed, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(explain());
    }
    let per_unit: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 24 * 3600,
        _ => return Err(explain()),
    };
    let count: u64 = digits.parse().map_err(|_| explain())?;
    let secs = count
        .checked_mul(per_unit)
        .filter(|s| *s <= MAX_SECS)
        .ok_or_else(|| format!("{}; the longest is 36600d", explain()))?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Runs one retention pass for a command that just opened the store. Never fails
/// the command: a store without retention of its own (Redis alone) gets a warning
/// that the flag has no effect there; any other failure is a warning too, and the
/// command goes on. Returns whether the store does retention (so `serve` knows
/// whether to keep running passes).
pub(crate) async fn run_first_pass(manager: &SessionManager, max_age: Duration) -> bool {
    match manager.purge_idle_once(max_age).await {
        Ok(_) => true,
        Err(MemoryError::InvalidInput(_)) => {
            eprintln!(
                "warning: --retention has no effect on {}: it keeps nothing durably, and its \
                 TTL (--ttl) decides how long an idle conversation lives",
                manager.store_url()
            );
            false
        }
        Err(e) => {
            eprintln!("warning: retention did not run: {e}");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_plain_seconds() {
        let secs = |s: u64| Ok(Some(Duration::from_secs(s)));
        assert_eq!(parse_retention("90d"), secs(90 * 86_400));
        assert_eq!(parse_retention("12h"), secs(43_200));
        assert_eq!(parse_retention("30m"), secs(1_800));
        assert_eq!(parse_retention("30s"), secs(30));
        assert_eq!(parse_retention("45"), secs(45));
        assert_eq!(parse_retention(" 2S "), secs(2));
        assert_eq!(parse_retention("36600d"), secs(MAX_SECS));
    }

    #[test]
    fn zero_keeps_forever() {
        for zero in ["0", "0s", "0d", "000"] {
            assert_eq!(parse_retention(zero), Ok(None), "{zero}");
        }
    }

    #[test]
    fn bad_values_say_what_is_accepted() {
        for bad in [
            "",
            " ",
            "d",
            "-1",
            "1.5h",
            "10w",
            "1h30m",
            "ten",
            "+5",
            "36601d",
            "99999999999999999999",
        ] {
            let err = parse_retention(bad).expect_err(bad);
            assert!(err.contains("90d, 12h, 30m, 30s"), "{bad}: {err}");
        }
    }
}
