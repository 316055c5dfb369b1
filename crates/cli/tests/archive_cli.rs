//! `ragchat sessions` on Redis with an archive behind it (`--archive`), through the real
//! binary against a harness redis-server and a real SQLite archive file: a conversation
//! idle past the TTL leaves Redis, is listed as `archived`, still has its stats, and is
//! `hot` again once it is used.

mod cli_support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cli_support::{json, ok};
use ragchat_testkit::{redis_or_skip, RedisServer};

/// `ragchat --store STORE --archive ARCHIVE --ttl TTL ARGS` on `data_dir`.
fn ragchat(data_dir: &Path, store: &str, archive: &str, ttl: &str, args: &[&str]) -> Output {
    let with_archive = [&["--archive", archive, "--ttl", ttl], args].concat();
    cli_support::ragchat(data_dir, Some(store), &with_archive)
}

/// Redis keys of one conversation.
fn keys_of(redis: &RedisServer, user: &str, session: &str) -> Vec<String> {
    let pattern = format!("*{{{user}}}:s:{session}:*");
    redis
        .cli(&["--scan", "--pattern", &pattern])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits (at most 10 s) until Redis holds nothing of `user/session`.
fn wait_until_gone(redis: &RedisServer, user: &str, session: &str) {
    let started = Instant::now();
    while !keys_of(redis, user, session).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{user}/{session} stayed in Redis: {:?}",
            keys_of(redis, user, session)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn list_shows_the_tier_and_stats_reads_an_archived_conversation() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = redis.url();
    let archive = format!("sqlite://{}", d.join("archive.db").display());
    for session in ["old", "back"] {
        ok(ragchat(
            d,
            &store,
            &archive,
            "2",
            &[
                "sessions",
                "add",
                "--user",
                "tia",
                "--session",
                session,
                "What is ML?",
            ],
        ));
    }
    // The CLI archived what it wrote before it exited, so the TTL applies again.
    wait_until_gone(&redis, "tia", "old");
    wait_until_gone(&redis, "tia", "back");

    // Using a conversation brings it back into Redis.
    ok(ragchat(
        d,
        &store,
        &archive,
        "600",
        &[
            "sessions",
            "add",
            "--user",
            "tia",
            "--session",
            "back",
            "And then?",
        ],
    ));
    assert!(!keys_of(&redis, "tia", "back").is_empty());

    let listed = json(ragchat(
        d,
        &store,
        &archive,
        "600",
        &["sessions", "list", "--user", "tia", "--json"],
    ));
    let tiers: Vec<(String, String, u64)> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["session"].as_str().unwrap().to_string(),
                s["tier"].as_str().unwrap_or("(none)").to_string(),
                s["message_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tiers,
        vec![
            ("back".to_string(), "hot".to_string(), 2),
            ("old".to_string(), "archived".to_string(), 1)
        ],
        "{listed}"
    );

    let table = ok(ragchat(
        d,
        &store,
        &archive,
        "600",
        &["sessions", "list", "--user", "tia"],
    ));
    let header = table.lines().find(|l| l.contains("session")).unwrap();
    assert!(header.contains("tier"), "{table}");
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name) && !l.contains("session"))
            .unwrap_or_else(|| panic!("no row for {name}: {table}"))
            .to_string()
    };
    assert!(row(" old ").contains("archived"), "{table}");
    assert!(row(" back ").contains("hot"), "{table}");

    let stats = json(ragchat(
        d,
        &store,
        &archive,
        "600",
        &[
            "sessions",
            "stats",
            "--user",
            "tia",
            "--session",
            "old",
            "--json",
        ],
    ));
    assert_eq!(stats["message_count"], 1, "{stats}");
    // Reading stats does not load the conversation back into Redis.
    assert!(keys_of(&redis, "tia", "old").is_empty());

    // Without an archive there are no tiers, and no column.
    let alone = format!("sqlite://{}", d.join("alone.db").display());
    ok(Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env("RAGCHAT_DATA_DIR", d)
        .env_remove("RAGCHAT_ARCHIVE")
        .args(["--store", &alone, "sessions", "add", "--user", "tia", "hi"])
        .output()
        .unwrap());
    let plain = ok(Command::new(env!("CARGO_BIN_EXE_ragchat"))
        .env("RAGCHAT_DATA_DIR", d)
        .env_remove("RAGCHAT_ARCHIVE")
        .args(["--store", &alone, "sessions", "list", "--user", "tia"])
        .output()
        .unwrap());
    assert!(!plain.contains("tier"), "{plain}");
    let plain = json(
        Command::new(env!("CARGO_BIN_EXE_ragchat"))
            .env("RAGCHAT_DATA_DIR", d)
            .env_remove("RAGCHAT_ARCHIVE")
            .args([
                "--store", &alone, "sessions", "list", "--user", "tia", "--json",
            ])
            .output()
            .unwrap(),
    );
    assert!(plain["sessions"][0].get("tier").is_none(), "{plain}");
}
