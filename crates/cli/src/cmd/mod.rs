//! One module per command.

pub mod bench;
pub mod bench_http;
pub mod chat;
pub mod demo;
pub mod ingest;
pub mod serve;
pub mod serve_limits;
pub mod sessions;
