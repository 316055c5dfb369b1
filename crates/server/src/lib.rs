//! ragchat-server: the HTTP API over the chat engine.
//!
//! One chat turn end to end (conversation memory, history-aware retrieval, a streamed
//! answer, the atomic append) is `ragchat-engine`'s `ChatEngine`; this crate adapts it to
//! HTTP. Its main types are re-exported here for the server's callers and tests.
//!
//! - [`app`]: the HTTP API as an axum `Router` (testable without a socket); [`routes`]
//!   holds the handlers, one file per resource.
//! - [`about`]: what the server answers from (documents, example questions, answerer).
//! - [`state`]: `AppState` (engine, auth, metrics, running turns) and `ServerConfig`.
//! - [`auth`]: API keys file (keys in clear or as hashes, per-key limits), constant-time
//!   key lookup, reload (and what a failed one leaves in force), the `Caller` extractor,
//!   the lockout of sources that keep failing, and the refusal to serve a non-loopback
//!   address without keys.
//! - [`ratelimit`]: per-key requests per second and turns per minute (429).
//! - [`idempotency`]: `Idempotency-Key` retries answered from the store, across servers.
//! - [`limits`]: header-read, idle and per-request timeouts, the socket listener that
//!   enforces them, and the headers every response carries.
//! - [`readiness`]: a `/readyz` that asks the store at most once a second and shows a
//!   caller without a key only what a load balancer needs.
//! - [`edge_metrics`]: metrics of the above (auth failures, lockouts, 429s, timeouts).
//! - [`error`]: `ApiError` and the extractor wrappers that keep every error in one JSON shape.
//! - [`turn`]: running a turn as a tracked task, with its input checks and metrics.
//! - [`titles`]: conversation titles (the first question) for the session list, cached.
//! - [`metrics`]: the `ragchat_*` Prometheus metrics.
//! - [`persistence`]: what the shared Redis keeps on disk, for `/readyz`.
//! - [`openapi`]: the OpenAPI document served at `/openapi.json`.
//! - [`web`]: the chat page at `/`, embedded in the binary.
//! - [`serve`](mod@serve): serving on a socket with graceful shutdown and key reload.

pub mod about;
mod app;
pub mod auth;
pub mod edge_metrics;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod persistence;
pub mod ratelimit;
pub mod readiness;
pub mod routes;
pub mod serve;
pub mod state;
pub mod titles;
pub mod turn;
pub mod web;

pub use auth::{check_bind_address, Auth};
pub use error::ApiError;
pub use ragchat_engine::{
    ChatEngine, EngineConfig, EngineError, RecallConfig, TurnIds, TurnOutcome, TurnTimings,
};
pub use serve::{serve, shutdown_signal};
pub use state::{AppState, ServerConfig};

/// The whole HTTP API (`/v1`, health, metrics, OpenAPI, the web page) as a router.
pub fn app(state: AppState) -> axum::Router {
    app::router(state)
}
