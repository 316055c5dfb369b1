//! What the CLI test files that run `ragchat` against a data dir share: the command with
//! the environment's store settings cleared, and its output checked.
#![allow(dead_code)] // each test file uses its own share of these

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `ragchat ARGS` on `data_dir`, with `--store STORE` when given; store, TTL, retention and
/// archive settings from the environment do not reach it.
pub(crate) fn ragchat(data_dir: &Path, store: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ragchat"));
    cmd.env_remove("RAGCHAT_STORE")
        .env_remove("RAGCHAT_REDIS_URL")
        .env_remove("RAGCHAT_TTL")
        .env_remove("RAGCHAT_RETENTION")
        .env_remove("RAGCHAT_ARCHIVE")
        .env_remove("RAGCHAT_ARCHIVE_MODE")
        .env("RAGCHAT_DATA_DIR", data_dir);
    if let Some(store) = store {
        cmd.args(["--store", store]);
    }
    cmd.args(args).output().expect("run ragchat")
}

/// The standard output of a run that must have succeeded.
pub(crate) fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "ragchat failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The JSON a run that must have succeeded printed.
pub(crate) fn json(out: Output) -> Value {
    let text = ok(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
