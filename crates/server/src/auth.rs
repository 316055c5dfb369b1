//! Who is calling: API keys mapped to users, and the [`Caller`] extractor.
//!
//! The keys file has one `KEY USER` per line; `#` starts a comment and blank lines are
//! ignored. Keys are kept only as SHA-256 digests and compared in constant time, against
//! every entry, so neither the comparison nor the position of a match shows in the
//! response time. The file is re-read on SIGHUP ([`Auth::reload`]); a file that no
//! longer parses leaves the previous keys in place.
//!
//! Without a keys file every request acts as the user [`LOCAL_USER`], which is only
//! safe on a loopback address: [`check_bind_address`] refuses anything else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::error::ApiError;
use crate::state::AppState;

/// The user every request acts as when the server runs without a keys file.
pub const LOCAL_USER: &str = "local";

/// Shortest accepted API key, in characters: shorter ones are guessable.
pub const MIN_KEY_LEN: usize = 16;

/// Why a keys file was refused.
#[derive(Debug, thiserror::Error)]
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
    /// A line is not `KEY USER` with a valid key and user id.
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

/// Why the server refuses to listen on an address.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to serve on {addr} without API keys: every caller would act as user \
     \"{LOCAL_USER}\"; pass --api-keys FILE, or listen on a loopback address such as 127.0.0.1"
)]
pub struct OpenBindError {
    /// The address that was asked for.
    pub addr: SocketAddr,
}

/// A parsed keys file: SHA-256 digests of keys, each with its user.
pub struct ApiKeys {
    entries: Vec<KeyEntry>,
}

struct KeyEntry {
    digest: [u8; 32],
    user: String,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Digests are not secrets, but there is nothing useful in printing them.
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .finish()
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// Parses the text of a keys file; `path` only names the file in errors.
    ///
    /// # Errors
    /// `InvalidLine` naming the first bad line (not two fields, a key shorter than
    /// [`MIN_KEY_LEN`], an invalid user id, a key listed twice); `Empty` when no line
    /// holds a key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeysError> {
        let invalid = |line: usize, reason: String| KeysError::InvalidLine {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut entries: Vec<KeyEntry> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            let [key, user] = fields.as_slice() else {
                return Err(invalid(
                    line,
                    format!("expected `KEY USER`, found {} field(s)", fields.len()),
                ));
            };
            if key.chars().count() < MIN_KEY_LEN {
                return Err(invalid(
                    line,
                    format!("the key is shorter than {MIN_KEY_LEN} characters"),
                ));
            }
            ragchat_memory::message::validate_id("user", user)
                .map_err(|e| invalid(line, e.to_string()))?;
            let digest = digest(key.as_bytes());
            if entries.iter().any(|e| e.digest == digest) {
                return Err(invalid(line, "this key is already listed".to_string()));
            }
            entries.push(KeyEntry {
                digest,
                user: (*user).to_string(),
            });
        }
        if entries.is_empty() {
            return Err(KeysError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(ApiKeys { entries })
    }

    /// Reads and parses a keys file.
    ///
    /// # Errors
    /// `Read` when the file cannot be read; otherwise as [`ApiKeys::parse`].
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys (never true for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The user `key` belongs to. Compares digests in constant time against every
    /// entry, and selects the match without branching on it.
    pub fn user_for(&self, key: &str) -> Option<&str> {
        let presented = digest(key.as_bytes());
        let mut matched = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, entry) in self.entries.iter().enumerate() {
            let equal = entry.digest.ct_eq(&presented);
            index = u64::conditional_select(&index, &(i as u64), equal);
            matched |= equal;
        }
        bool::from(matched).then(|| self.entries[index as usize].user.as_str())
    }
}

/// How callers are identified.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No keys file: every request acts as [`LOCAL_USER`] (loopback only).
    Local,
    /// Bearer keys from a file, re-read by [`Auth::reload`].
    Keys {
        /// The keys file.
        path: PathBuf,
        /// The keys currently in force.
        keys: Arc<RwLock<Arc<ApiKeys>>>,
    },
}

impl Auth {
    /// No authentication: every request is [`LOCAL_USER`].
    pub fn local() -> Self {
        Auth::Local
    }

    /// Keys from `path`.
    ///
    /// # Errors
    /// As [`ApiKeys::load`].
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, KeysError> {
        let path = path.into();
        let keys = ApiKeys::load(&path)?;
        Ok(Auth::Keys {
            path,
            keys: Arc::new(RwLock::new(Arc::new(keys))),
        })
    }

    /// Whether requests must carry a key.
    pub fn requires_key(&self) -> bool {
        matches!(self, Auth::Keys { .. })
    }

    /// Re-reads the keys file; returns how many keys are now in force (0 for `Local`).
    /// On error the previous keys stay in force.
    ///
    /// # Errors
    /// As [`ApiKeys::load`].
    pub fn reload(&self) -> Result<usize, KeysError> {
        match self {
            Auth::Local => Ok(0),
            Auth::Keys { path, keys } => {
                let fresh = Arc::new(ApiKeys::load(path)?);
                let count = fresh.len();
                *keys.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                Ok(count)
            }
        }
    }

    /// The user a request acts as, from its `Authorization: Bearer KEY` header.
    ///
    /// # Errors
    /// `401 unauthorized` when keys are required and the header is missing, malformed,
    /// or carries a key that is not known.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let keys = match self {
            Auth::Local => return Ok(LOCAL_USER.to_string()),
            Auth::Keys { keys, .. } => Arc::clone(&keys.read().unwrap_or_else(|e| e.into_inner())),
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing API key: send `Authorization: Bearer KEY`",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("malformed Authorization header: expected `Bearer KEY`")
            })?;
        keys.user_for(token)
            .map(str::to_string)
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))
    }
}

/// Refuses a non-loopback address when there are no keys (every caller would be
/// [`LOCAL_USER`], with access to every conversation).
///
/// # Errors
/// [`OpenBindError`] naming the address.
pub fn check_bind_address(addr: SocketAddr, auth: &Auth) -> Result<(), OpenBindError> {
    if auth.requires_key() || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(OpenBindError { addr })
    }
}

/// The authenticated user of a request. Extracting it answers 401 when the request
/// carries no valid key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user id every session of this request belongs to.
    pub user: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = state.auth().authenticate(&parts.headers)?;
        Ok(Caller { user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "keys.txt";

    fn parse(text: &str) -> Result<ApiKeys, KeysError> {
        ApiKeys::parse(text, Path::new(PATH))
    }

    #[test]
    fn parses_keys_comments_and_blank_lines() {
        let keys = parse(
            "# team keys\n\nalice-key-0123456789 alice\n  bob-key-0123456789abc   bob # laptop\n",
        )
        .unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.user_for("alice-key-0123456789"), Some("alice"));
        assert_eq!(keys.user_for("bob-key-0123456789abc"), Some("bob"));
        assert_eq!(keys.user_for("alice-key-012345678"), None);
        assert_eq!(keys.user_for(""), None);
    }

    #[test]
    fn invalid_lines_are_named() {
        let cases = [
            ("alice-key-0123456789\n", 1, "found 1 field"),
            (
                "# c\nalice-key-0123456789 alice extra\n",
                2,
                "found 3 field",
            ),
            ("short alice\n", 1, "shorter than 16"),
            ("alice-key-0123456789 al/ice\n", 1, "user id"),
            (
                "alice-key-0123456789 alice\nalice-key-0123456789 bob\n",
                2,
                "already listed",
            ),
        ];
        for (text, line, why) in cases {
            let err = parse(text).unwrap_err();
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
    fn bearer_header_is_required_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "alice-key-0123456789 alice\n").unwrap();
        let auth = Auth::from_file(&path).unwrap();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            auth.authenticate(&headers)
        };
        assert_eq!(with("Bearer alice-key-0123456789").unwrap(), "alice");
        assert_eq!(with("bearer alice-key-0123456789").unwrap(), "alice");
        assert!(with("Basic alice-key-0123456789").is_err());
        assert!(with("Bearer wrong-key-0123456789").is_err());
        assert!(auth.authenticate(&HeaderMap::new()).is_err());

        // A reload that fails keeps the old keys; one that succeeds replaces them.
        std::fs::write(&path, "broken\n").unwrap();
        assert!(auth.reload().is_err());
        assert_eq!(with("Bearer alice-key-0123456789").unwrap(), "alice");
        std::fs::write(&path, "carol-key-0123456789 carol\n").unwrap();
        assert_eq!(auth.reload().unwrap(), 1);
        assert!(with("Bearer alice-key-0123456789").is_err());
        assert_eq!(with("Bearer carol-key-0123456789").unwrap(), "carol");
    }

    #[test]
    fn local_mode_is_loopback_only() {
        let local = Auth::local();
        assert_eq!(local.authenticate(&HeaderMap::new()).unwrap(), LOCAL_USER);
        assert!(check_bind_address("127.0.0.1:8080".parse().unwrap(), &local).is_ok());
        assert!(check_bind_address("[::1]:8080".parse().unwrap(), &local).is_ok());
        let err = check_bind_address("0.0.0.0:8080".parse().unwrap(), &local).unwrap_err();
        assert!(err.to_string().contains("--api-keys"), "{err}");
    }
}
