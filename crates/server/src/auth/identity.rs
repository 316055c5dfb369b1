//! Who a request is: [`Auth`] (no keys, or the keys file in force) turns a request's
//! `Authorization: Bearer KEY` header into an [`Identity`], or says why it cannot
//! ([`AuthFailure`]); and the refusal to serve a non-loopback address without keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::{header, HeaderMap};

use super::keys_file::{KeyLimits, KeysError};
use super::reload::KeyRing;
use crate::error::ApiError;

/// The user every request acts as when the server runs without a keys file.
pub const LOCAL_USER: &str = "local";

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

/// How callers are identified.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No keys file: every request is [`LOCAL_USER`] (loopback only).
    Local,
    /// Bearer keys from a file, re-read by [`Auth::reload`].
    Keys(Arc<KeyRing>),
}

/// Who a request authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user id every session of the request belongs to.
    pub user: String,
    /// The SHA-256 of the key presented (`None` without a keys file): rate limits
    /// are kept per key.
    pub key: Option<[u8; 32]>,
    /// The key's own limits from the keys file.
    pub limits: KeyLimits,
}

/// Why a request did not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer KEY`.
    Malformed,
    /// A key that is not in force.
    Unknown,
}

impl FailureReason {
    /// The `reason` label of `ragchat_auth_failures_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Missing => "missing",
            FailureReason::Malformed => "malformed",
            FailureReason::Unknown => "unknown",
        }
    }
}

/// Why a request did not authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// What was wrong, for metrics.
    pub reason: FailureReason,
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        ApiError::unauthorized(match failure.reason {
            FailureReason::Missing => "missing API key: send `Authorization: Bearer KEY`",
            FailureReason::Malformed => "malformed Authorization header: expected `Bearer KEY`",
            FailureReason::Unknown => "unknown API key",
        })
    }
}

impl Auth {
    /// No authentication: every request is [`LOCAL_USER`].
    pub fn local() -> Self {
        Auth::Local
    }

    /// Keys from `path`. Problems with the file's permissions are logged and kept for
    /// [`Auth::warnings`].
    ///
    /// # Errors
    /// As [`ApiKeys::parse`](super::keys_file::ApiKeys::parse), or `Read` when the file cannot be read.
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self, KeysError> {
        Ok(Auth::Keys(Arc::new(KeyRing::load(path.into())?)))
    }

    /// Whether requests must carry a key.
    pub fn requires_key(&self) -> bool {
        matches!(self, Auth::Keys(_))
    }

    /// Re-reads the keys file; returns how many keys are now in force (0 for `Local`).
    /// See [`KeyRing::reload`] for what a failure leaves in force.
    ///
    /// # Errors
    /// Why the file was refused.
    pub fn reload(&self) -> Result<usize, KeysError> {
        match self {
            Auth::Local => Ok(0),
            Auth::Keys(ring) => ring.reload(),
        }
    }

    /// What an operator should fix about the keys file (a failed reload, loose
    /// permissions); empty without one.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Auth::Local => Vec::new(),
            Auth::Keys(ring) => ring.warnings(),
        }
    }

    /// Who a request is, from its `Authorization: Bearer KEY` header.
    ///
    /// # Errors
    /// When keys are required and the header is missing, malformed, or carries a key
    /// that is not in force.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, AuthFailure> {
        let ring = match self {
            Auth::Local => {
                return Ok(Identity {
                    user: LOCAL_USER.to_string(),
                    key: None,
                    limits: KeyLimits::default(),
                })
            }
            Auth::Keys(ring) => ring,
        };
        let fail = |reason| AuthFailure { reason };
        let value = headers
            .get(header::AUTHORIZATION)
            .ok_or(fail(FailureReason::Missing))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(fail(FailureReason::Malformed))?;
        let keys = ring.current();
        let found = keys.lookup(token).ok_or(fail(FailureReason::Unknown))?;
        Ok(Identity {
            user: found.user.to_string(),
            key: Some(found.digest),
            limits: found.limits,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_required_with_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "alice-key-0123456789 alice turns-per-minute=3\n").unwrap();
        let auth = Auth::from_file(&path).unwrap();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            auth.authenticate(&headers)
        };
        let alice = with("Bearer alice-key-0123456789").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.limits.turns_per_minute, Some(3));
        assert_eq!(
            alice.key,
            Some(super::super::keys_file::digest(b"alice-key-0123456789"))
        );
        assert_eq!(with("bearer alice-key-0123456789").unwrap().user, "alice");
        let reason = |r: Result<Identity, AuthFailure>| r.unwrap_err().reason;
        assert_eq!(
            reason(with("Basic alice-key-0123456789")),
            FailureReason::Malformed
        );
        assert_eq!(
            reason(with("Bearer wrong-key-0123456789")),
            FailureReason::Unknown
        );
        assert_eq!(
            reason(auth.authenticate(&HeaderMap::new())),
            FailureReason::Missing
        );
    }

    #[test]
    fn local_mode_is_loopback_only() {
        let local = Auth::local();
        assert_eq!(
            local.authenticate(&HeaderMap::new()).unwrap().user,
            LOCAL_USER
        );
        assert!(check_bind_address("127.0.0.1:8080".parse().unwrap(), &local).is_ok());
        assert!(check_bind_address("[::1]:8080".parse().unwrap(), &local).is_ok());
        let err = check_bind_address("0.0.0.0:8080".parse().unwrap(), &local).unwrap_err();
        assert!(err.to_string().contains("--api-keys"), "{err}");
    }
}
