//! ragchat-core: the few types every ragchat crate shares, so each concept has one home.
//!
//! A leaf crate: it depends on serde only (and utoipa with the `schema` feature, which
//! derives `ToSchema` on these types for the HTTP API's OpenAPI document).
//!
//! - [`role`]: [`Role`], who wrote a message (user, assistant, system).
//! - [`citation`]: [`SourceRef`], a document passage an answer cites, as stored and served.
//! - [`tokens`]: the one token estimate (about four characters per token, four tokens of
//!   framing per message) and [`recent_window`], the newest messages that fit a budget.
//!
//! `ragchat-memory` and `ragchat-rag` re-export these at their old paths.

pub mod citation;
pub mod role;
pub mod tokens;

pub use citation::{ConversationRef, SourceRef};
pub use role::{ParseRoleError, Role};
pub use tokens::{
    estimate_tokens, recent_window, CharEstimate, TokenCounter, MESSAGE_OVERHEAD_TOKENS,
};
