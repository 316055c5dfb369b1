//! `ragchat serve` with Redis as the hot tier and an archive behind it (`--archive`),
//! over real sockets: real server processes, a harness redis-server, a real SQLite
//! archive file or a harness PostgreSQL.
//!
//! - a conversation idle past the TTL leaves Redis and continues, whole, on another
//!   server (SQLite and PostgreSQL archives);
//! - `DELETE /v1/me` leaves nothing of the user in PostgreSQL, Redis or the journal;
//! - `/readyz` and `/metrics` show the archive; PostgreSQL down is a warning while
//!   turns go on, and the lag drains once it is back;
//! - `kill -9` under 32 clients: every acknowledged message reaches the archive once.

mod serve_support;

use std::path::Path;
use std::time::Duration;

use ragchat_testkit::{PostgresServer, RedisServer};
use serde_json::Value;
use serve_support::*;

const NO_CONVERSATION: &str = "I don't have any earlier conversation";

/// A user only test `c` uses, with a name no other test writes anywhere.
const ZED: &str = "zed-erasable-7";
const ZED_KEY: &str = "zed-key-0123456789abcdef0123";

/// A keys file for alice and zed in `dir`.
fn keys_file(dir: &Path) -> String {
    let path = dir.join("api-keys.txt");
    std::fs::write(&path, format!("{ALICE_KEY} alice\n{ZED_KEY} {ZED}\n")).unwrap();
    path.display().to_string()
}

/// `serve` arguments: Redis in front of `archive`, with `ttl`.
fn tier_args(redis: &RedisServer, archive: &str, ttl: &str, keys: &str) -> Vec<String> {
    [
        "--store",
        &redis.url(),
        "--archive",
        archive,
        "--ttl",
        ttl,
        "--api-keys",
        keys,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&args)
}

/// A fresh PostgreSQL database on `pg` for an archive.
fn pg_archive(pg: &PostgresServer, name: &str) -> String {
    pg.create_database(name);
    format!(
        "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
        pg.port()
    )
}

/// Every Redis key whose name contains `needle`.
fn redis_keys(redis: &RedisServer, needle: &str) -> Vec<String> {
    redis
        .cli(&["--scan", "--pattern", &format!("*{needle}*")])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Waits (at most 10 s) until Redis holds no key of `user/session`.
async fn gone_from_redis(redis: &RedisServer, user: &str, session: &str) {
    let needle = format!("{{{user}}}:s:{session}:");
    eventually(
        &format!("{user}/{session} to leave Redis"),
        Duration::from_secs(10),
        || {
            let left = redis_keys(redis, &needle);
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
}

/// The message ids of a session through `base`, oldest first.
async fn message_ids(base: &str, key: &str, session: &str) -> Vec<String> {
    let reply = get(
        &format!("{base}/v1/sessions/{session}/messages?limit=1000"),
        Some(key),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// One turn that must succeed; returns (question id, answer id, answer text).
async fn turn(base: &str, key: &str, session: &str, content: &str) -> (String, String, String) {
    let reply = post_message(base, session, Some(key), content).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    (
        body["user_message"]["id"].as_str().unwrap().to_string(),
        body["answer"]["id"].as_str().unwrap().to_string(),
        body["answer"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// The value of an unlabelled series in `/metrics`.
async fn metric(base: &str, name: &str) -> Option<f64> {
    let text = get(&format!("{base}/metrics"), None).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// `/readyz` with alice's key (the detailed view).
async fn readyz(base: &str) -> Value {
    get(&format!("{base}/readyz"), Some(ALICE_KEY)).await.json()
}

/// Test a: idle past `--ttl 2`, the conversation leaves Redis; the next turn, on another
/// server, sees all of it.
async fn idle_past_the_ttl_continues_elsewhere(redis: &RedisServer, archive: &str) {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_file(keys_dir.path());
    let args = tier_args(redis, archive, "2", &keys);
    let a = start(&args);
    let mut before = Vec::new();
    for q in ["What is machine learning?", "How does it learn?"] {
        let (q_id, a_id, _) = turn(&a.url(), ALICE_KEY, "trip", q).await;
        before.extend([q_id, a_id]);
    }
    gone_from_redis(redis, "alice", "trip").await;
    assert!(metric(&a.url(), "ragchat_archive_written_total").await >= Some(4.0));

    let b = start(&args);
    let (_, _, answer) = turn(&b.url(), ALICE_KEY, "trip", "Continue our conversation").await;
    assert!(
        !answer.starts_with(NO_CONVERSATION),
        "the history did not come back: {answer}"
    );
    assert!(answer.to_lowercase().contains("learn"), "{answer}");
    let ids = message_ids(&b.url(), ALICE_KEY, "trip").await;
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(ids[..4], before[..], "the history, in order, once");
    assert_eq!(
        metric(&b.url(), "ragchat_rehydrations_total").await,
        Some(1.0)
    );
    // Server A, which wrote it first, sees the continuation too.
    assert_eq!(message_ids(&a.url(), ALICE_KEY, "trip").await, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_past_the_ttl_continues_on_another_server_sqlite_archive() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = format!("sqlite://{}", dir.path().join("archive.db").display());
    idle_past_the_ttl_continues_elsewhere(&redis, &archive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_past_the_ttl_continues_on_another_server_postgres_archive() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let Some(pg) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let archive = pg_archive(&pg, "idle");
    idle_past_the_ttl_continues_elsewhere(&redis, &archive).await;
}

/// Test c: `DELETE /v1/me` reaches both tiers and the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_me_leaves_nothing_in_postgres_redis_or_the_journal() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let Some(pg) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let archive = pg_archive(&pg, "erase");
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_file(keys_dir.path());
    let server = start(&tier_args(&redis, &archive, "2", &keys));
    let base = server.url();
    // One conversation only in the archive (idle past the TTL), one in both tiers,
    // and alice's, which must stay.
    turn(&base, ZED_KEY, "old", "What is overfitting?").await;
    gone_from_redis(&redis, ZED, "old").await;
    turn(&base, ZED_KEY, "new", "What is a decision tree?").await;
    turn(&base, ALICE_KEY, "kept", "What is a neural network?").await;
    // Everything archived: the archive holds zed's rows before the delete.
    eventually(
        "the archive to catch up",
        Duration::from_secs(20),
        || async { (readyz(&base).await["archive"]["lag_messages"] == 0).then_some(()) },
    )
    .await;
    let tables: Vec<String> = pg
        .psql(
            "erase",
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        )
        .lines()
        .map(str::to_string)
        .collect();
    assert!(tables.iter().any(|t| t == "ragchat_messages"), "{tables:?}");
    let rows_naming = |user: &str| -> Vec<String> {
        tables
            .iter()
            .filter_map(|t| {
                let sql = format!("SELECT count(*) FROM \"{t}\" x WHERE x::text LIKE '%{user}%'");
                let n: u64 = pg.psql("erase", &sql).parse().unwrap();
                (n > 0).then(|| format!("{t}: {n}"))
            })
            .collect()
    };
    assert!(!rows_naming(ZED).is_empty(), "zed was never archived");

    let reply = call(
        reqwest::Method::DELETE,
        &format!("{base}/v1/me"),
        Some(ZED_KEY),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["deleted_sessions"], 2, "{}", reply.text);

    assert_eq!(
        rows_naming(ZED),
        Vec::<String>::new(),
        "rows of zed left in PostgreSQL"
    );
    assert!(!rows_naming("alice").is_empty(), "alice's rows went too");
    assert_eq!(redis_keys(&redis, ZED), Vec::<String>::new());
    assert!(!redis_keys(&redis, "alice").is_empty());
    // The journal (SQLite files in the data dir) names zed nowhere.
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("journal") {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(ZED.len()).any(|w| w == ZED.as_bytes()),
                "{name} still names {ZED}"
            );
        }
    }
    // And the server says so.
    let list = get(&format!("{base}/v1/sessions"), Some(ZED_KEY)).await;
    assert_eq!(
        list.json()["sessions"],
        serde_json::json!([]),
        "{}",
        list.text
    );
}

/// Test d: `/readyz` shows the archive; PostgreSQL down is a warning, turns go on; once
/// it is back the lag drains to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_shows_an_archive_down_as_a_warning_and_the_lag_drains() {
    let Some(redis) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let Some(mut pg) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let archive = pg_archive(&pg, "outage");
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_file(keys_dir.path());
    let server = start(&tier_args(&redis, &archive, "3600", &keys));
    let base = server.url();
    turn(&base, ALICE_KEY, "steady", "What is machine learning?").await;
    let ready = eventually(
        "the archive to catch up",
        Duration::from_secs(20),
        || async {
            let r = readyz(&base).await;
            (r["archive"]["lag_messages"] == 0).then_some(r)
        },
    )
    .await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["archive"]["state"], "ok", "{ready}");
    assert_eq!(ready["archive"]["lag_seconds"], 0.0, "{ready}");

    pg.stop();
    let mut during = Vec::new();
    for i in 0..3 {
        let (q, a, _) = turn(
            &base,
            ALICE_KEY,
            "steady",
            &format!("What is overfitting? ({i})"),
        )
        .await;
        during.extend([q, a]);
    }
    let down = eventually(
        "the archive to show down",
        Duration::from_secs(30),
        || async {
            let r = readyz(&base).await;
            (r["archive"]["state"] == "down").then_some(r)
        },
    )
    .await;
    assert_eq!(
        down["ready"], true,
        "an archive outage must not drain the server: {down}"
    );
    assert_eq!(down["mode"], "normal", "{down}");
    assert!(
        down["archive"]["lag_messages"].as_u64() >= Some(6),
        "{down}"
    );
    let warnings = down["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("archive")),
        "{down}"
    );
    assert!(metric(&base, "ragchat_archive_lag_messages").await >= Some(6.0));
    // Turns still succeed, and what they store stays in Redis without expiry.
    let (q, a, _) = turn(&base, ALICE_KEY, "steady", "What is a decision tree?").await;
    during.extend([q, a]);
    let meta = redis_keys(&redis, "alice}:s:steady:h");
    assert_eq!(
        redis.cli(&["TTL", &meta[0]]),
        "-1",
        "unarchived, so no expiry"
    );
    let public = get(&format!("{base}/readyz"), None).await.json();
    assert!(public["warning_count"].as_u64() >= Some(1), "{public}");

    tokio::task::block_in_place(|| pg.start_again());
    let back = eventually("the lag to drain", Duration::from_secs(60), || async {
        let r = readyz(&base).await;
        (r["archive"]["state"] == "ok" && r["archive"]["lag_messages"] == 0).then_some(r)
    })
    .await;
    assert_eq!(back["ready"], true, "{back}");
    assert_eq!(
        metric(&base, "ragchat_archive_lag_messages").await,
        Some(0.0)
    );
    // Everything written during the outage is in PostgreSQL now.
    let archived = pg.psql(
        "outage",
        "SELECT string_agg(id, ',') FROM ragchat_messages WHERE user_id = 'alice'",
    );
    for id in &during {
        assert!(
            archived.contains(id.as_str()),
            "{id} missing from the archive"
        );
    }
    // Archived again, the conversation has its TTL back.
    let ttl: i64 = redis.cli(&["TTL", &meta[0]]).parse().unwrap();
    assert!(ttl > 0, "TTL {ttl}");
}

/// A conversation begun while the archive is down: Redis cannot tell it from one that
/// is only in the archive, so the tier asks the archive, which does not answer; the
/// error reaches the memory layer as "store unreachable", which puts the whole server
/// in degraded mode (every user's appends go to this server's local journal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_conversation_while_the_archive_is_down_keeps_the_server_normal() {
    let Some(redis) = ragchat_testkit::redis_or_skip() else {
        return;
    };
    let Some(mut pg) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let archive = pg_archive(&pg, "fresh");
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = keys_file(keys_dir.path());
    let server = start(&tier_args(&redis, &archive, "3600", &keys));
    let base = server.url();
    turn(&base, ALICE_KEY, "before", "What is machine learning?").await;
    pg.stop();
    turn(&base, ALICE_KEY, "fresh", "What is a neural network?").await;
    let after = readyz(&base).await;
    assert_eq!(after["mode"], "normal", "{after}");
    assert_eq!(
        after["pending_sync"], 0,
        "nothing went to the journal: {after}"
    );
}
