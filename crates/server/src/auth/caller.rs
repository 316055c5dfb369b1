//! The [`Caller`] extractor: who sent a request, after the guards every `/v1` route
//! shares (a locked-out source, a missing or unknown key, a key over its request rate).
//!
//! It needs only what [`CallerState`] gives it, so it works with any router state that
//! provides the keys, the failure counts, the rate limit and somewhere to report
//! failures: the server's `AppState` implements it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::failures::{AuthEvents, FailedAuths, Source};
use super::identity::{Auth, Identity};
use super::keys_file::KeyLimits;
use crate::error::ApiError;

/// What extracting a [`Caller`] needs from the router's state.
pub trait CallerState: Send + Sync {
    /// How callers are identified.
    fn auth(&self) -> &Auth;
    /// Failed authentications per source, and lockouts.
    fn auth_failures(&self) -> &FailedAuths;
    /// Where failures and lockouts are reported (the server's metrics).
    fn auth_events(&self) -> &dyn AuthEvents;
    /// Refuses an authenticated request over its key's request rate.
    ///
    /// # Errors
    /// `429 rate_limited` with `Retry-After`.
    fn check_request_rate(&self, identity: &Identity) -> Result<(), ApiError>;
}

/// The authenticated caller of a request. Extracting it refuses, in this order: a
/// source locked out after repeated failures (429), a missing or unknown key (401,
/// counted against the source), a key over its requests-per-second limit (429).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user id every session of this request belongs to.
    pub user: String,
    /// The key's SHA-256 (`None` without a keys file).
    pub key: Option<[u8; 32]>,
    /// The key's own limits from the keys file.
    pub limits: KeyLimits,
}

impl<S: CallerState> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let source = Source::of(parts);
        let identity = state.auth_failures().authenticate(
            state.auth(),
            &parts.headers,
            source,
            state.auth_events(),
        )?;
        state.check_request_rate(&identity)?;
        Ok(Caller {
            user: identity.user,
            key: identity.key,
            limits: identity.limits,
        })
    }
}
