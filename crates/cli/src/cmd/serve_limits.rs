//! `ragchat serve` options for the server's limits: HTTP timeouts, per-key rate
//! limits, and the lockout of sources that keep failing to authenticate.

use std::time::Duration;

use clap::Args;
use ragchat_server::auth::LockoutConfig;
use ragchat_server::limits::HttpLimits;
use ragchat_server::ratelimit::RateLimitConfig;
use ragchat_server::ServerConfig;

/// Limits of `ragchat serve`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Seconds a client has to send a request's headers once the server waits for one
    /// (also how long an idle keep-alive connection is kept).
    #[arg(
        long,
        env = "RAGCHAT_HEADER_READ_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub header_read_timeout: u64,

    /// Seconds a connection may sit with no byte moving while no request is being
    /// handled (a client that stops reading a response); keep it above 15 (the
    /// stream keep-alive).
    #[arg(
        long,
        env = "RAGCHAT_IDLE_TIMEOUT",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub idle_timeout: u64,

    /// Seconds a request may take before its response starts; past it the answer is
    /// 503 (a chat turn still finishes and is stored).
    #[arg(
        long,
        env = "RAGCHAT_REQUEST_TIMEOUT",
        value_name = "SECS",
        default_value_t = 120
    )]
    pub request_timeout: u64,

    /// Chat turns per minute per API key (0 = unlimited); the keys file can set it per key.
    #[arg(
        long,
        env = "RAGCHAT_TURNS_PER_MINUTE",
        value_name = "N",
        default_value_t = 60
    )]
    pub turns_per_minute: u32,

    /// Requests per second per API key (0 = unlimited); the keys file can set it per key.
    #[arg(
        long,
        env = "RAGCHAT_REQUESTS_PER_SECOND",
        value_name = "N",
        default_value_t = 20
    )]
    pub requests_per_second: u32,

    /// Failed authentications from one address within a minute that lock it out
    /// (0 = never; raise it behind a reverse proxy, where every request comes from
    /// the proxy).
    #[arg(
        long,
        env = "RAGCHAT_AUTH_LOCKOUT_FAILURES",
        value_name = "N",
        default_value_t = 20
    )]
    pub auth_lockout_failures: u32,

    /// Seconds a locked-out address is refused.
    #[arg(
        long,
        env = "RAGCHAT_AUTH_LOCKOUT_SECS",
        value_name = "SECS",
        default_value_t = 60
    )]
    pub auth_lockout_secs: u64,
}

impl LimitArgs {
    /// Puts these limits into a server configuration.
    pub(crate) fn apply(&self, config: &mut ServerConfig) {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        config.limits = HttpLimits {
            header_read_timeout: secs(self.header_read_timeout),
            idle_timeout: secs(self.idle_timeout),
            request_timeout: secs(self.request_timeout),
        };
        config.rate_limits = RateLimitConfig {
            turns_per_minute: self.turns_per_minute,
            requests_per_second: self.requests_per_second,
        };
        config.lockout = LockoutConfig {
            max_failures: self.auth_lockout_failures,
            lockout: secs(self.auth_lockout_secs),
            ..LockoutConfig::DEFAULT
        };
    }
}
