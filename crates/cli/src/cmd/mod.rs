//! One module per command.

pub mod bench;
pub mod chat;
pub mod demo;
pub mod erase;
pub mod ingest;
pub mod paged;
pub mod serve;
pub mod serve_limits;
pub mod sessions;
