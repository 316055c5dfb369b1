//! HTTP limits: how long a client may take, and the headers every response carries.
//!
//! - [`HttpLimits::header_read_timeout`]: from the moment the server waits for a
//!   request on a connection (just opened, or after the previous response) until its
//!   headers are complete. A client that sends them a byte at a time (slowloris), or
//!   nothing at all, is disconnected; so is a keep-alive connection idle that long.
//! - [`HttpLimits::idle_timeout`]: a connection on which no byte moves in either
//!   direction for this long while no request is being handled is closed: a client
//!   that stops reading a response (or a stream) does not hold it, or the turn behind
//!   it, forever. It must be longer than the 15 s between a stream's keep-alive
//!   comments.
//! - [`HttpLimits::request_timeout`]: a request whose response has not started within
//!   this long is answered `503 timeout` (with `Retry-After`). A chat turn it cuts
//!   short is not abandoned: it finishes and is stored, and a retry with the same
//!   `Idempotency-Key` gets it. Streams are bounded by the LLM timeout instead, once
//!   they have started.
//!
//! The timeouts act in [`listener`] (a real socket) and in the router's deadline
//! middleware (`routes::layers::request_deadline`); the router served without a
//! socket (tests, fuzzing) has only the deadline.
//!
//! `routes::layers::security_headers` adds `X-Content-Type-Options: nosniff` and
//! `Cache-Control: no-store` to responses that do not set their own: API answers hold
//! people's conversations, which no shared cache should keep.

pub mod listener;

use std::time::Duration;

/// Default [`HttpLimits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`HttpLimits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`HttpLimits::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long clients may take (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest wait for a request's headers (and for the next request on a keep-alive
    /// connection).
    pub header_read_timeout: Duration,
    /// Longest a connection may sit with no byte moving while no request is handled.
    pub idle_timeout: Duration,
    /// Longest a request may take before its response starts.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}
