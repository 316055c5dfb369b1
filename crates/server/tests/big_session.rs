//! One user's huge conversation must not stall the shared Redis for everyone else
//! (issue 11, defect 1), and its owner must still be able to page through it and
//! export it.
//!
//! Two servers share one real redis-server, as two `ragchat serve` processes would:
//! server A answers alice, who keeps reading the first message of a ~100 MB session;
//! server B answers bob's chat turns meanwhile. Bob's turns must never need the local
//! journal: no store call of server B timed out, so no turn was journaled and no read
//! was served degraded. (A wall-clock bound would flake on a loaded machine; these
//! counters only move when a store call of B missed its timeout.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use ragchat_memory::{open_store, JournalConfig, ManagerConfig, SessionManager, StoreOptions};
use ragchat_testkit::{metric, RedisServer};
use serde_json::Value;

/// Store timeout of both servers. Generous, so that a loaded test machine does not
/// trip it; a whole-session read of 100 MB keeps Redis busy for longer than this.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// Messages in alice's big session, and the size of each (100 MiB in all).
const BIG_MESSAGES: usize = 1600;
const BIG_MESSAGE_BYTES: usize = 64 * 1024;

/// Writes alice's session straight into Redis, in ragchat's key layout, with a Lua
/// script (a 100 MB session is more than any append may write today).
fn plant_big_session(redis: &RedisServer, user: &str, session: &str) {
    let script = r#"
local log, meta, ids, index = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local n, size, now, session = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local filler = string.rep('x', size - 8)
for i = 1, n do
  local id = string.format('00000000-0000-7000-8000-%012d', i)
  local role = 'user'
  if i % 2 == 0 then role = 'assistant' end
  redis.call('XADD', log, i .. '-0', 'id', id, 'role', role,
    'content', string.format('%07d ', i) .. filler, 'sources', '', 'ts', now + i,
    'status', 'complete')
  redis.call('SADD', ids, id)
end
redis.call('HSET', meta, 'created_at', now, 'updated_at', now + n, 'count', n,
  'bytes', n * size, 'seq', n, 'trimmed', 0)
redis.call('ZADD', index, now + n, session)
return n
"#;
    let base = format!("ragchat:{{{user}}}:s:{session}");
    let now = chrono::Utc::now().timestamp_millis() - 10_000_000;
    let reply = redis.cli(&[
        "EVAL",
        script,
        "4",
        &format!("{base}:log"),
        &format!("{base}:meta"),
        &format!("{base}:ids"),
        &format!("ragchat:{{{user}}}:sessions"),
        &BIG_MESSAGES.to_string(),
        &BIG_MESSAGE_BYTES.to_string(),
        &now.to_string(),
        session,
    ]);
    assert_eq!(reply, BIG_MESSAGES.to_string(), "planting failed: {reply}");
}

/// A server over `url` with a local journal in `dir`, as `ragchat serve --redis` runs.
async fn server(url: &str, dir: &std::path::Path) -> (axum::Router, ragchat_server::AppState) {
    let opts = StoreOptions {
        connect_timeout: STORE_TIMEOUT,
        command_timeout: STORE_TIMEOUT,
        lazy: true,
        ..StoreOptions::default()
    };
    let store = open_store(url, &opts).await.expect("open the store");
    let memory = SessionManager::with_journal(
        store,
        ManagerConfig {
            journal: Some(JournalConfig {
                path: dir.join("journal.db"),
                max_bytes: 1 << 30,
            }),
            store_timeout: STORE_TIMEOUT,
            ..ManagerConfig::default()
        },
    )
    .expect("manager");
    let state = state(engine(memory), keys_auth(dir));
    (ragchat_server::app(state.clone()), state)
}

fn metric_value(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_session_neither_stalls_other_users_nor_locks_out_its_owner() {
    let Some(redis) = RedisServer::builder().start_or_skip() else {
        return;
    };
    plant_big_session(&redis, "alice", "big");
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let (app_a, _state_a) = server(&redis.url(), dir_a.path()).await;
    let (app_b, state_b) = server(&redis.url(), dir_b.path()).await;

    // Alice reads the first message of her session, over and over, four at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let app = app_a.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut reads = 0;
                while !stop.load(Ordering::SeqCst) {
                    let reply =
                        get(&app, "/v1/sessions/big/messages?limit=1", Some(ALICE_KEY)).await;
                    if reply.status == StatusCode::OK {
                        let page = reply.json();
                        assert_eq!(page["messages"].as_array().map(Vec::len), Some(1));
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    // Meanwhile bob chats with server B.
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) || latencies.len() < 10 {
        let t = Instant::now();
        let reply = post_message(&app_b, "small", Some(BOB_KEY), "What is overfitting?").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        latencies.push(t.elapsed());
    }
    stop.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "{} turns of bob while alice read her 100 MB session {reads} times: p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        p99,
        latencies[latencies.len() - 1]
    );
    let metrics = get(&app_b, "/metrics", None).await.text();
    assert_eq!(
        metric_value(&metrics, "ragchat_turns_journaled_total"),
        0.0,
        "a turn of bob's timed out into the journal: {metrics}"
    );
    assert_eq!(
        metric_value(&metrics, r#"ragchat_memory_reads_total{source="degraded"}"#),
        0.0,
        "a history read of bob's timed out: {metrics}"
    );
    let status = state_b.memory().status().await.unwrap();
    assert_eq!(status.pending_sync, 0, "{status:?}");
    assert!(reads >= 4, "alice's reads did not run: {reads}");

    // Her session is over the per-session cap: a new message is refused, clearly.
    let refused = post_message(&app_a, "big", Some(ALICE_KEY), "One more?").await;
    let message = refused.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "quota");
    assert!(message.contains("session"), "{message}");

    // Alice pages through all of it, 100 messages at a time.
    let mut seen = 0usize;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &cursor {
            None => "/v1/sessions/big/messages?limit=100".to_string(),
            Some(c) => format!("/v1/sessions/big/messages?limit=100&after={c}"),
        };
        let reply = get(&app_a, &uri, Some(ALICE_KEY)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let page = reply.json();
        let messages = page["messages"].as_array().unwrap();
        assert!(!messages.is_empty(), "an empty page before the end: {page}");
        for m in messages {
            seen += 1;
            let content = m["content"].as_str().unwrap();
            assert!(
                content.starts_with(&format!("{seen:07} ")),
                "message {seen} out of order: {}",
                &content[..16]
            );
        }
        pages += 1;
        if page["has_more"] == Value::Bool(false) {
            break;
        }
        cursor = Some(
            page["next_cursor"]
                .as_str()
                .unwrap_or_else(|| {
                    panic!("has_more without a next_cursor: {}", page["next_cursor"])
                })
                .to_string(),
        );
        assert!(pages <= BIG_MESSAGES, "paging does not end");
    }
    assert_eq!(seen, BIG_MESSAGES);

    // And exports it: the body streams, and holds every message.
    let reply = get(&app_a, "/v1/export", Some(ALICE_KEY)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let export = reply.json();
    let sessions = export["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let messages = sessions[0]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), BIG_MESSAGES);
    assert!(messages[BIG_MESSAGES - 1]["content"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{BIG_MESSAGES:07} ")));
}
