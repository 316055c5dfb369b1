//! One module per command.

pub mod bench;
pub mod bench_http;
pub mod bench_load;
pub mod chat;
pub mod demo;
pub mod erase;
pub mod ingest;
pub mod paged;
pub mod serve;
pub mod serve_limits;
pub mod sessions;
