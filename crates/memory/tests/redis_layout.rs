//! Layout v2 against data the v1 scripts wrote (`backend::redis::v1`, the last v1
//! release's scripts kept as fixtures): v1 sessions are served and converted, a big one a
//! bounded step at a time; v1 and v2 servers side by side on one session lose and double
//! nothing; and the dedupe record remembers the ids of trimmed messages.
#![cfg(feature = "redis")]

mod redis_support;

use std::sync::Arc;

use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::backend::redis::v1;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{
    ManagerConfig, Message, Quotas, ReadFrom, ReadLimit, SessionKey, SessionManager, SessionStore,
    Ttl,
};
use ragchat_testkit::{redis_or_skip, RedisServer};
use redis_support::connect;

fn opts(max_messages: u64) -> AppendOptions {
    AppendOptions {
        ttl: Ttl::secs(3600),
        max_messages,
        refresh_ttl: true,
        quotas: Quotas::UNBOUNDED,
    }
}

fn texts(messages: &[(u64, Message)]) -> Vec<String> {
    messages.iter().map(|(_, m)| m.content.clone()).collect()
}

async fn everything(store: &dyn SessionStore, key: &SessionKey) -> Vec<(u64, Message)> {
    store
        .load(
            key,
            ReadFrom::After(0),
            ReadLimit::new(100_000, u64::MAX),
            Ttl::secs(3600),
        )
        .await
        .unwrap()
        .map(|l| l.messages)
        .unwrap_or_default()
}

fn exists(server: &RedisServer, key: &str) -> bool {
    server.cli(&["EXISTS", key]) == "1"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_session_is_served_and_converted_with_its_positions() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let key = unique_key("v1served");
    let sent: Vec<Message> = (0..12).map(|i| Message::user(format!("old {i}"))).collect();
    for pair in sent.chunks(2) {
        v1::append(&server.url(), &key, pair, 3600, 10)
            .await
            .unwrap();
    }
    let keys = SessionKeys::new(&key);
    assert!(exists(&server, &keys.v1_log) && !exists(&server, &keys.hash));

    let store = connect(&server).await;
    let read = everything(&store, &key).await;
    // v1 trimmed to its cap of 10: seqs 3..=12, as v1 numbered them.
    assert_eq!(
        read.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (3..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        texts(&read),
        sent[2..]
            .iter()
            .map(|m| m.content.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(read[0].1, sent[2], "ids, roles, times and status survive");
    assert!(!exists(&server, &keys.v1_log) && !exists(&server, &keys.v1_meta));
    assert!(!exists(&server, &keys.v1_ids));

    // Replays of what v1 stored store nothing; new messages follow on.
    let outcome = store.append(&key, &sent[8..], opts(10)).await.unwrap();
    assert_eq!(
        outcome.stored(),
        0,
        "a replay of converted messages doubled them"
    );
    let outcome = store
        .append(&key, &[Message::user("new")], opts(10))
        .await
        .unwrap();
    assert_eq!(outcome.seqs, vec![Some(13)]);
    let meta = store.meta(&key).await.unwrap().unwrap();
    assert_eq!(
        (meta.message_count, meta.last_seq, meta.trimmed_seq),
        (10, 13, 3)
    );
    let listed = store.list(key.user(), None, 10).await.unwrap();
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].message_count, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_v1_session_converts_in_bounded_steps() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let key = unique_key("v1big");
    // 8 MB in 400 messages: a conversion step moves at most 1 MB.
    let filler = "x".repeat(20_000);
    let sent: Vec<Message> = (0..400)
        .map(|i| Message::user(format!("{i:04} {filler}")))
        .collect();
    for part in sent.chunks(50) {
        v1::append(&server.url(), &key, part, 3600, 0)
            .await
            .unwrap();
    }
    server.cli(&["CONFIG", "RESETSTAT"]);
    let store = connect(&server).await;
    let read = everything(&store, &key).await;
    assert_eq!(read.len(), 400);
    assert!(read.iter().zip(&sent).all(|((_, a), b)| a == b));
    let stats = server.cli(&["INFO", "commandstats"]);
    let calls: u64 = stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        calls >= 8,
        "8 MB took {calls} script calls: not bounded steps"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_servers_side_by_side_lose_and_double_nothing() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    // With the TTL refreshed on every append the guard looks for v1 keys every time;
    // without, only reads that reach Redis (and the next refreshing append) merge them.
    for refresh in [true, false] {
        side_by_side(&server, refresh).await;
    }
}

async fn side_by_side(server: &RedisServer, refresh: bool) {
    let key = unique_key(if refresh { "rolling" } else { "rollingnr" });
    let store = connect(server).await;
    let opts = AppendOptions {
        refresh_ttl: refresh,
        ..opts(0)
    };
    let mut expected = Vec::new();
    let mut both = Vec::new();
    for round in 0..6 {
        let old = vec![Message::user(format!("v1 says {round}"))];
        let new = vec![Message::assistant(format!("v2 says {round}"))];
        v1::append(&server.url(), &key, &old, 3600, 0)
            .await
            .unwrap();
        store.append(&key, &new, opts).await.unwrap();
        expected.extend(old.iter().chain(&new).map(|m| m.content.clone()));
        both.extend(old.into_iter().chain(new));
    }
    // Each layout also replays what the other stored (a journal replay on either kind of
    // server): nothing doubles.
    v1::append(&server.url(), &key, &both[..2], 3600, 0)
        .await
        .unwrap();
    store.append(&key, &both[2..6], opts).await.unwrap();
    let read = everything(&store, &key).await;
    let mut got = texts(&read);
    assert_eq!(got.len(), expected.len(), "refresh {refresh}: {got:?}");
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "refresh {refresh}");
    let seqs: Vec<u64> = read.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let keys = SessionKeys::new(&key);
    assert!(
        !exists(server, &keys.v1_log),
        "v1 keys left after the last read"
    );
    let manager = SessionManager::new(Arc::new(connect(server).await), ManagerConfig::default());
    assert_eq!(manager.history(&key).await.unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_trimmed_message_stores_nothing() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let store = connect(&server).await;
    let key = unique_key("trimmed");
    let sent: Vec<Message> = (0..40).map(|i| Message::user(format!("m{i}"))).collect();
    for m in &sent {
        store
            .append(&key, std::slice::from_ref(m), opts(10))
            .await
            .unwrap();
    }
    // m0..m29 are trimmed; replaying any of them, or all at once, stores nothing.
    let outcome = store.append(&key, &sent[..1], opts(10)).await.unwrap();
    assert_eq!(outcome.stored(), 0, "a trimmed message came back");
    let outcome = store.append(&key, &sent, opts(10)).await.unwrap();
    assert_eq!(outcome.stored(), 0);
    let read = everything(&store, &key).await;
    assert_eq!(
        texts(&read),
        sent[30..]
            .iter()
            .map(|m| m.content.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(read.last().unwrap().0, 40);
}

/// During a rolling deploy from v1, a v2 server's cached copy of a conversation must not
/// hide what a v1 server appends to it: Redis has to tell the v2 server (its tracking
/// covers the v1 keys too), and the next read merges the v1 entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_copy_learns_of_a_v1_servers_append() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let manager = SessionManager::new(Arc::new(connect(&server).await), ManagerConfig::default());
    let key = unique_key("v1cache");
    for round in 0..3 {
        manager
            .append(
                &key,
                vec![
                    Message::user(format!("question {round}")),
                    Message::assistant(format!("answer {round}")),
                ],
            )
            .await
            .unwrap();
    }
    assert_eq!(manager.history(&key).await.unwrap().len(), 6);
    let old = Message::user("written by a v1 server");
    v1::append(&server.url(), &key, std::slice::from_ref(&old), 3600, 0)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let history = manager.history(&key).await.unwrap();
        if history.iter().any(|m| m.id == old.id) {
            assert_eq!(history.len(), 7);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cached copy still hides the v1 server's message: {:?}",
            history.iter().map(|m| &m.content).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
