//! `ragchat bench http --protocol both` against a `ragchat serve` process: both protocols
//! answer in alternating slices, the report carries both results and their ratios, and
//! under load every resent chat-completions conversation is stored once, whole (no
//! doubled turns, no stray branches).

mod openai_support;
mod serve_support;

use std::process::Stdio;

use serde_json::Value;
use serve_support::*;

#[tokio::test]
async fn bench_http_compares_the_two_protocols_in_one_run() {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = write_keys(keys_dir.path());
    let server = Server::start(&["--api-keys", keys.to_str().unwrap()]);
    let out = ragchat(keys_dir.path())
        .args(["bench", "http", "--url", &server.url()])
        .args(["--protocol", "both", "--rounds", "1", "--duration", "4"])
        .args(["--concurrency", "3", "--turns-per-chat", "3"])
        .args(["--api-key", ALICE_KEY, "--json"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run bench http");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("bench JSON");
    for (side, protocol) in [
        ("native", "native"),
        ("chat_completions", "chat-completions"),
    ] {
        let r = &report[side];
        assert_eq!(r["protocol"], protocol, "{report}");
        assert_eq!(r["errors"], 0, "{report}");
        assert!(r["turns"].as_u64().unwrap() > 0, "{report}");
        assert!(!r["phase_ms"].as_object().unwrap().is_empty(), "{report}");
    }
    for ratio in ["p50_ratio", "p99_ratio", "throughput_ratio"] {
        assert!(report[ratio].as_f64().unwrap() > 0.0, "{report}");
    }

    // Every chat-completions conversation: a system opening, then whole turns, at most 3.
    let stored = openai_support::stored(&server.url(), Some(ALICE_KEY)).await;
    let mut resent = 0;
    for (session, messages) in stored.iter().filter(|(s, _)| s.starts_with("oai-")) {
        resent += 1;
        let roles: Vec<&str> = messages.iter().map(|(role, _)| role.as_str()).collect();
        assert_eq!(roles[0], "system", "{session}: {roles:?}");
        let turns = &roles[1..];
        assert!(
            !turns.is_empty() && turns.len() <= 6 && turns.len() % 2 == 0,
            "{session}: {roles:?}"
        );
        assert!(
            turns.chunks(2).all(|pair| pair == ["user", "assistant"]),
            "{session}: {roles:?}"
        );
    }
    assert!(
        resent >= 3,
        "each client held chat-completions conversations"
    );
}
