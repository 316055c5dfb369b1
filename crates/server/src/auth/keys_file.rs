//! The API keys file: its format, and parsing it into [`ApiKeys`].
//!
//! One key per line, `#` starts a comment, blank lines are ignored:
//!
//! ```text
//! # KEY (or sha256:HEX of it)                                          USER   [OPTIONS]
//! alice-0123456789abcdef0123                                           alice
//! sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 bob  turns-per-minute=10
//! ```
//!
//! - A key is given in clear (at least [`MIN_KEY_LEN`] characters) or as `sha256:` and
//!   the 64 hex digits of its SHA-256, so that the file need not hold any secret.
//! - The user is a valid user id that is not reserved ([`RESERVED_USER_PREFIX`]).
//! - Options set this key's rate limits, overriding the server's: `turns-per-minute=N`,
//!   `requests-per-second=N` (`0` = unlimited).
//! - A UTF-8 byte order mark at the start (Windows editors write one) is ignored.
//!
//! Keys are kept only as SHA-256 digests and looked up in constant time (see
//! [`ApiKeys::lookup`]).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Shortest accepted API key given in clear, in characters: shorter ones are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// User ids starting with this (in any case) are ragchat's own (e.g. the readiness
/// probe's user): a keys file cannot hand them out.
pub const RESERVED_USER_PREFIX: &str = "_ragchat";

/// How a key given as a hash starts.
pub const HASH_PREFIX: &str = "sha256:";

/// Why a keys file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read the API keys file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `KEY USER [OPTIONS]` with a valid key, user id and options.
    #[error("{}: line {line}: {reason}", path.display())]
    InvalidLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no key at all: nobody could call the API.
    #[error("the API keys file {} has no keys (expected lines of `KEY USER`)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Rate limits a keys file sets for one key; `None` leaves the server's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    /// Chat turns per minute (`turns-per-minute=N`; 0 = unlimited).
    pub turns_per_minute: Option<u32>,
    /// Requests per second (`requests-per-second=N`; 0 = unlimited).
    pub requests_per_second: Option<u32>,
}

/// One key of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyEntry {
    pub(crate) digest: [u8; 32],
    pub(crate) user: String,
    pub(crate) limits: KeyLimits,
    /// Given in clear (not as a hash) in the file.
    pub(crate) plaintext: bool,
}

/// The key a request presented, once found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyMatch<'a> {
    /// The user the key belongs to.
    pub user: &'a str,
    /// The SHA-256 of the key: names the key (for rate limits) without holding it.
    pub digest: [u8; 32],
    /// The key's own limits.
    pub limits: KeyLimits,
}

/// A parsed keys file: SHA-256 digests of keys, each with its user and limits.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    entries: Vec<KeyEntry>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but there is nothing useful in printing them.
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .finish()
    }
}

/// The SHA-256 of a key.
pub fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

/// What a whole file gives when read line by line, keeping the good lines.
pub(crate) struct Lenient {
    /// The valid lines' keys.
    pub(crate) keys: ApiKeys,
    /// The first problem, if any (a bad line, or no key at all).
    pub(crate) error: Option<KeysError>,
}

impl ApiKeys {
    /// Parses the text of a keys file; `path` only names the file in errors.
    ///
    /// # Errors
    /// `InvalidLine` naming the first bad line (fewer than two fields, a key shorter
    /// than [`MIN_KEY_LEN`] or a malformed hash, an invalid or reserved user id, an
    /// unknown or malformed option, a key listed twice); `Empty` when no line holds a
    /// key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeysError> {
        let lenient = Self::parse_lenient(text, path);
        match lenient.error {
            Some(e) => Err(e),
            None => Ok(lenient.keys),
        }
    }

    /// Parses every line, keeping the valid ones and the first error.
    pub(crate) fn parse_lenient(text: &str, path: &Path) -> Lenient {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries: Vec<KeyEntry> = Vec::new();
        let mut error = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let parsed = parse_line(raw).and_then(|entry| match entry {
                Some(e) if entries.iter().any(|known| known.digest == e.digest) => {
                    Err("this key is already listed".to_string())
                }
                other => Ok(other),
            });
            match parsed {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => {}
                Err(reason) => {
                    error.get_or_insert(KeysError::InvalidLine {
                        path: path.to_path_buf(),
                        line,
                        reason,
                    });
                }
            }
        }
        if entries.is_empty() && error.is_none() {
            error = Some(KeysError::Empty {
                path: path.to_path_buf(),
            });
        }
        Lenient {
            keys: ApiKeys { entries },
            error,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys (a parsed file always has some; a failed reload may
    /// leave none in force).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many keys the file gives in clear (rather than as `sha256:` hashes).
    pub fn plaintext_count(&self) -> usize {
        self.entries.iter().filter(|e| e.plaintext).count()
    }

    /// The keys of `self` that `other` also holds, for the same user.
    pub(crate) fn also_in(&self, other: &ApiKeys) -> ApiKeys {
        let entries = self
            .entries
            .iter()
            .filter(|e| {
                other
                    .entries
                    .iter()
                    .any(|o| o.digest == e.digest && o.user == e.user)
            })
            .cloned()
            .collect();
        ApiKeys { entries }
    }

    /// The key `key` if it is listed. Compares digests in constant time against every
    /// entry and selects the match without branching on it, so neither the comparison
    /// nor the position of a match shows in the response time.
    pub fn lookup(&self, key: &str) -> Option<KeyMatch<'_>> {
        let presented = digest(key.as_bytes());
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let equal = entry.digest.ct_eq(&presented);
            index = u64::conditional_select(&index, &(i as u64), equal);
            matched |= equal;
        }
        if !bool::from(matched) {
            return None;
        }
        let entry = self.entries.get(usize::try_from(index).ok()?)?;
        Some(KeyMatch {
            user: &entry.user,
            digest: entry.digest,
            limits: entry.limits,
        })
    }

    /// The user `key` belongs to (see [`ApiKeys::lookup`]).
    pub fn user_for(&self, key: &str) -> Option<&str> {
        self.lookup(key).map(|m| m.user)
    }
}

/// One line: `Ok(None)` for a blank or comment line.
fn parse_line(raw: &str) -> Result<Option<KeyEntry>, String> {
    let content = raw.split('#').next().unwrap_or("").trim();
    if content.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = content.split_whitespace().collect();
    let [key, user, options @ ..] = fields.as_slice() else {
        return Err(format!(
            "expected `KEY USER [OPTIONS]`, found {} field(s)",
            fields.len()
        ));
    };
    let (digest, plaintext) = match key.strip_prefix(HASH_PREFIX) {
        Some(hex) => (parse_hex_digest(hex)?, false),
        None if key.chars().count() < MIN_KEY_LEN => {
            return Err(format!("the key is shorter than {MIN_KEY_LEN} characters"));
        }
        None => (digest(key.as_bytes()), true),
    };
    ragchat_memory::message::validate_id("user", user).map_err(|e| e.to_string())?;
    if is_reserved_user(user) {
        return Err(format!(
            "user id {user:?} is reserved for ragchat's internal use (ids starting with {RESERVED_USER_PREFIX:?})"
        ));
    }
    let mut limits = KeyLimits::default();
    for option in options {
        parse_option(option, &mut limits)?;
    }
    Ok(Some(KeyEntry {
        digest,
        user: (*user).to_string(),
        limits,
        plaintext,
    }))
}

/// Whether `user` is one of ragchat's own ids.
pub fn is_reserved_user(user: &str) -> bool {
    user.len() >= RESERVED_USER_PREFIX.len()
        && user.as_bytes()[..RESERVED_USER_PREFIX.len()]
            .eq_ignore_ascii_case(RESERVED_USER_PREFIX.as_bytes())
}

fn parse_hex_digest(hex: &str) -> Result<[u8; 32], String> {
    let invalid = || format!("expected {HASH_PREFIX} followed by the 64 hex digits of a SHA-256");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(invalid());
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).map_err(|_| invalid())?;
        *byte = u8::from_str_radix(text, 16).map_err(|_| invalid())?;
    }
    Ok(digest)
}

fn parse_option(option: &str, limits: &mut KeyLimits) -> Result<(), String> {
    let Some((name, value)) = option.split_once('=') else {
        return Err(format!(
            "unexpected {option:?}: options are turns-per-minute=N and requests-per-second=N"
        ));
    };
    let slot = match name {
        "turns-per-minute" => &mut limits.turns_per_minute,
        "requests-per-second" => &mut limits.requests_per_second,
        other => {
            return Err(format!(
                "unknown option {other:?}: options are turns-per-minute=N and requests-per-second=N"
            ))
        }
    };
    if slot.is_some() {
        return Err(format!("{name} is given twice"));
    }
    let n = value
        .parse::<u32>()
        .map_err(|_| format!("{name}={value:?} is not a whole number (0 = unlimited)"))?;
    *slot = Some(n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "keys.txt";

    fn parse(text: &str) -> Result<ApiKeys, KeysError> {
        ApiKeys::parse(text, Path::new(PATH))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn parses_keys_comments_and_blank_lines() {
        let keys = parse(
            "# team keys\n\nalice-key-0123456789 alice\n  bob-key-0123456789abc   bob # laptop\n",
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.plaintext_count(), 2);
        assert_eq!(keys.user_for("alice-key-0123456789"), Some("alice"));
        assert_eq!(keys.user_for("bob-key-0123456789abc"), Some("bob"));
        assert_eq!(keys.user_for("alice-key-012345678"), None);
        assert_eq!(keys.user_for(""), None);
    }

    #[test]
    fn keys_may_be_given_as_hashes_with_limits() {
        let hash = hex(&digest(b"carol-key-0123456789"));
        let text = format!(
            "sha256:{hash} carol turns-per-minute=5 requests-per-second=0\nsha256:{} dave\n",
            hash.to_uppercase().replace('A', "a").replacen('0', "1", 1)
        );
        let keys = parse(&text).unwrap();
        assert_eq!(keys.plaintext_count(), 0);
        let carol = keys.lookup("carol-key-0123456789").unwrap();
        assert_eq!(carol.user, "carol");
        assert_eq!(
            carol.limits,
            KeyLimits {
                turns_per_minute: Some(5),
                requests_per_second: Some(0)
            }
        );
        assert_eq!(carol.digest, digest(b"carol-key-0123456789"));
        // The hash itself is not a key.
        assert_eq!(keys.user_for(&format!("sha256:{hash}")), None);
    }

    #[test]
    fn invalid_lines_are_named() {
        let good = hex(&digest(b"x"));
        let cases = [
            ("alice-key-0123456789\n".to_string(), 1, "found 1 field"),
            ("short alice\n".to_string(), 1, "shorter than 16"),
            ("alice-key-0123456789 al/ice\n".to_string(), 1, "user id"),
            (
                "alice-key-0123456789 alice\nalice-key-0123456789 bob\n".to_string(),
                2,
                "already listed",
            ),
            (
                "# c\nalice-key-0123456789 alice extra\n".to_string(),
                2,
                "unexpected \"extra\"",
            ),
            (
                "alice-key-0123456789 alice speed=3\n".to_string(),
                1,
                "unknown option \"speed\"",
            ),
            (
                "alice-key-0123456789 alice turns-per-minute=-1\n".to_string(),
                1,
                "not a whole number",
            ),
            (
                "alice-key-0123456789 alice turns-per-minute=1 turns-per-minute=2\n".to_string(),
                1,
                "given twice",
            ),
            (format!("sha256:{} alice\n", &good[1..]), 1, "64 hex digits"),
            (
                format!("sha256:{}zz alice\n", &good[2..]),
                1,
                "64 hex digits",
            ),
            (
                format!("sha256:{good} alice\nsha256:{good} bob\n"),
                2,
                "already listed",
            ),
        ];
        for (text, line, why) in cases {
            let err = parse(&text).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, KeysError::InvalidLine { line: l, .. } if l == line),
                "{text:?}: {msg}"
            );
            assert!(
                msg.contains(&format!("{PATH}: line {line}")) && msg.contains(why),
                "{text:?}: {msg}"
            );
        }
        assert!(matches!(
            parse("# nothing\n\n"),
            Err(KeysError::Empty { .. })
        ));
    }

    #[test]
    fn a_byte_order_mark_does_not_disable_the_first_key() {
        let keys =
            parse("\u{feff}alice-key-0123456789 alice\nbob-key-0123456789abc bob\n").unwrap();
        assert_eq!(keys.user_for("alice-key-0123456789"), Some("alice"));
        assert_eq!(keys.user_for("bob-key-0123456789abc"), Some("bob"));
    }

    #[test]
    fn reserved_internal_users_are_refused() {
        for user in ["_ragchat-readyz", "_ragchat", "_RAGCHAT-x"] {
            let err = parse(&format!("alice-key-0123456789 {user}\n")).unwrap_err();
            assert!(err.to_string().contains("reserved"), "{user}: {err}");
        }
        assert!(parse("alice-key-0123456789 _rag\n").is_ok());
    }

    #[test]
    fn lenient_parsing_keeps_the_good_lines() {
        let lenient = ApiKeys::parse_lenient(
            "alice-key-0123456789 alice\nbroken\nbob-key-0123456789abc bob\n",
            Path::new(PATH),
        );
        assert_eq!(lenient.keys.len(), 2);
        assert!(matches!(
            lenient.error,
            Some(KeysError::InvalidLine { line: 2, .. })
        ));
        let old = parse("alice-key-0123456789 alice\ncarol-key-0123456789 carol\n").unwrap();
        let kept = old.also_in(&lenient.keys);
        assert_eq!(kept.user_for("alice-key-0123456789"), Some("alice"));
        assert_eq!(kept.user_for("carol-key-0123456789"), None);
        assert_eq!(kept.user_for("bob-key-0123456789abc"), None);
    }
}
