//! Who is calling: API keys mapped to users, the [`Caller`] extractor, and what guards
//! it (failed-authentication lockout, per-key rate limits).
//!
//! - [`identity`]: [`Auth`] (no keys, or the keys in force) and the [`Identity`] a
//!   request's bearer key maps to, or why it maps to none.
//! - [`caller`]: the [`Caller`] extractor, over any router state that implements
//!   [`CallerState`] (this module does not know the server's state).
//! - [`keys_file`]: the keys file format and its parser ([`ApiKeys`]).
//! - [`reload`]: the keys in force, re-read on SIGHUP ([`KeyRing`]); what a reload
//!   that fails leaves in force; warnings about the file's permissions.
//! - [`failures`]: failed authentications counted per source address, logged at a
//!   bounded rate, and a short lockout for a source that keeps failing.
//!
//! Without a keys file every request acts as the user [`LOCAL_USER`], which is only
//! safe on a loopback address: [`check_bind_address`] refuses anything else.
//!
//! Modules depend one way: `caller` -> `failures` -> `identity` -> `reload` ->
//! `keys_file`; this file only declares and re-exports them.

pub mod caller;
pub mod failures;
pub mod identity;
pub mod keys_file;
pub mod reload;

pub use self::caller::{Caller, CallerState};
pub use self::failures::{AuthEvents, FailedAuths, LockoutConfig, Source};
pub use self::identity::{
    check_bind_address, Auth, AuthFailure, FailureReason, Identity, OpenBindError, LOCAL_USER,
};
pub use self::keys_file::{ApiKeys, KeyLimits, KeysError, MIN_KEY_LEN, RESERVED_USER_PREFIX};
pub use self::reload::KeyRing;
