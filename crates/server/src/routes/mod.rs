//! The routes; [`crate::app`] joins them into the server's router.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/sessions/{session}/messages` | [`turns::message_create`] (JSON or SSE) |
//! | `GET /v1/sessions` | [`sessions::sessions_list`] |
//! | `GET /v1/sessions/{session}/messages` | [`sessions::messages_list`] |
//! | `GET /v1/sessions/{session}/stats` | [`sessions::session_stats`] |
//! | `GET /v1/sessions/{session}/messages/{message_id}/sources/{n}` | [`sources::source_get`] |
//! | `PATCH /v1/sessions/{session}` | [`sessions::session_rename`] (its title) |
//! | `DELETE /v1/sessions/{session}` | [`sessions::session_delete`] |
//! | `GET /v1/search` | [`search::search_get`] (the caller's messages) |
//! | `GET /v1/about` | [`about::about_get`] |
//! | `GET /v1/export` | [`account::export`] |
//! | `DELETE /v1/me` | [`account::me_delete`] |
//! | `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{model}` | [`openai`] (OpenAI's protocol) |
//! | `GET /healthz`, `/readyz`, `/metrics`, `/openapi.json` | [`ops`] |
//! | `GET /`, `/style.css`, `/*.js` | the web chat page ([`crate::web`]) |
//!
//! Every response passes through [`layers`]: the per-request deadline and the headers
//! that keep shared caches out.

pub mod about;
pub mod account;
pub mod layers;
pub mod openai;
pub mod ops;
pub mod search;
pub mod sessions;
pub mod sources;
pub mod turns;
