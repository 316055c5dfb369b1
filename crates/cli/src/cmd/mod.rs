//! One module per command.

pub mod bench;
pub mod bench_http;
pub mod chat;
pub mod demo;
pub mod erase;
pub mod ingest;
pub mod serve;
pub mod sessions;
