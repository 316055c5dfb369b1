//! One module per command.

pub(crate) mod bench;
pub(crate) mod chat;
pub(crate) mod demo;
pub(crate) mod erase;
pub(crate) mod ingest;
pub(crate) mod paged;
pub(crate) mod serve;
pub(crate) mod serve_limits;
pub(crate) mod sessions;
