//! Degraded mode against a real redis-server: the store dies, is partitioned away or
//! flaps; appends keep succeeding through the local journal, and the journal replays
//! so that Redis ends with every acknowledged message exactly once, in order.
#![cfg(all(feature = "redis", feature = "sqlite"))]

use std::sync::Arc;
use std::time::{Duration, Instant};

use ragchat_memory::journal::{Journal, JournalConfig};
use ragchat_memory::manager::BreakerConfig;
use ragchat_memory::store::redact_url;
use ragchat_memory::testing::{assert_writer_order, unique_key, wait_drained};
use ragchat_memory::{
    open_store, ManagerConfig, Message, MessageId, Mode, SessionKey, SessionManager, StoreOptions,
};
use ragchat_testkit::{durable_redis_or_skip, TcpProxy};

const TIMEOUT: Duration = Duration::from_millis(250);

/// How long a replay may take to drain the journal once the store is back (generous:
/// the breaker's backoff is at most 500 ms here; the rest is room for a slow machine).
const DRAIN_CAP: Duration = Duration::from_secs(60);

/// The longest a turn may take while the store is down or partitioned: its store calls
/// are bounded by the timeout (a read and an append, each tried at most twice within
/// its budget), plus generous room for a saturated test machine. Far below what an
/// unbounded call would take (the connection's own timeouts are seconds to minutes).
fn turn_bound() -> Duration {
    4 * TIMEOUT + Duration::from_secs(5)
}

fn options() -> StoreOptions {
    StoreOptions {
        connect_timeout: TIMEOUT,
        command_timeout: TIMEOUT,
        lazy: true,
        ..StoreOptions::default()
    }
}

/// A manager with a journal in `dir`, like a ragchat server has.
async fn journaled(url: &str, dir: &std::path::Path, max_bytes: u64) -> SessionManager {
    journaled_with(url, dir, max_bytes, true).await
}

async fn journaled_with(
    url: &str,
    dir: &std::path::Path,
    max_bytes: u64,
    background_replay: bool,
) -> SessionManager {
    journaled_on(url, dir, max_bytes, background_replay, options()).await
}

async fn journaled_on(
    url: &str,
    dir: &std::path::Path,
    max_bytes: u64,
    background_replay: bool,
    options: StoreOptions,
) -> SessionManager {
    let store = open_store(url, &options).await.expect("open store");
    let config = ManagerConfig {
        journal: Some(JournalConfig {
            path: dir.join("journal.db"),
            max_bytes,
        }),
        store_timeout: TIMEOUT,
        breaker: BreakerConfig {
            failure_threshold: 2,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        },
        replay_interval: Duration::from_millis(100),
        background_replay,
        ..ManagerConfig::default()
    };
    SessionManager::with_journal(store, config).expect("manager with journal")
}

/// A plain manager straight on Redis, to check what Redis itself holds.
async fn plain(url: &str) -> SessionManager {
    let store = open_store(url, &StoreOptions::default())
        .await
        .expect("open store");
    SessionManager::new(store, ManagerConfig::default())
}

fn contents(messages: &[Message]) -> Vec<String> {
    messages.iter().map(|m| m.content.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_conversation_then_restarted() {
    let Some(mut server) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = journaled(&server.url(), dir.path(), 1 << 30).await;
    let key = unique_key("killed");
    for i in 0..5 {
        let r = manager
            .append(
                &key,
                vec![
                    Message::user(format!("q{i}")),
                    Message::assistant(format!("a{i}")),
                ],
            )
            .await
            .unwrap();
        assert!(!r.journaled);
    }
    server.stop();
    for i in 5..10 {
        let started = Instant::now();
        let r = manager
            .append(
                &key,
                vec![
                    Message::user(format!("q{i}")),
                    Message::assistant(format!("a{i}")),
                ],
            )
            .await
            .expect("appends keep succeeding while Redis is down");
        let took = started.elapsed();
        assert!(took <= turn_bound(), "append {i} took {took:?}");
        assert!(r.journaled, "append {i} should have gone to the journal");
        assert_eq!(manager.mode(), Mode::Degraded);
    }
    let history = manager.history(&key).await.unwrap();
    assert_eq!(
        history.len(),
        20,
        "cache plus journal serve the whole conversation"
    );
    assert!(!history.is_partial());
    let status = manager.status().await.unwrap();
    assert_eq!(status.pending_sync, 10);
    assert!(status.last_error.is_some());
    let stats = manager.stats(&key).await.unwrap().unwrap();
    assert_eq!(stats.mode, Mode::Degraded);
    assert_eq!(stats.pending_sync, 10);

    server.start_again();
    wait_drained(&manager, DRAIN_CAP).await;
    let expected: Vec<String> = (0..10)
        .flat_map(|i| [format!("q{i}"), format!("a{i}")])
        .collect();
    let in_redis = plain(&server.url())
        .await
        .history(&key)
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        contents(&in_redis),
        expected,
        "Redis holds every message once, in order"
    );
    assert_eq!(
        contents(&manager.history(&key).await.unwrap().to_vec()),
        expected
    );
    let identity = manager.journal().unwrap().store().to_string();
    assert_eq!(
        Journal::open(
            JournalConfig {
                path: dir.path().join("journal.db"),
                max_bytes: 1
            },
            &identity
        )
        .unwrap()
        .stats()
        .await
        .unwrap()
        .entries,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_redis_loses_and_doubles_nothing() {
    let Some(server) = durable_redis_or_skip() else {
        return;
    };
    let server = Arc::new(std::sync::Mutex::new(server));
    let url = server.lock().unwrap().url();
    let dir = tempfile::tempdir().unwrap();
    let manager = Arc::new(journaled(&url, dir.path(), 1 << 30).await);
    let key = unique_key("flapping");
    let tasks = 3;
    let per_task = 100;
    let writers: Vec<_> = (0..tasks)
        .map(|t| {
            let manager = manager.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for i in 0..per_task {
                    manager
                        .append(&key, vec![Message::user(format!("task {t} msg {i}"))])
                        .await
                        .unwrap_or_else(|e| panic!("task {t} message {i} failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(12)).await;
                }
            })
        })
        .collect();
    let flapper = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(120));
                server.lock().unwrap().stop();
                std::thread::sleep(Duration::from_millis(150));
                server.lock().unwrap().start_again();
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    flapper.await.unwrap();
    wait_drained(&manager, DRAIN_CAP).await;
    let in_redis = plain(&url).await.history(&key).await.unwrap().to_vec();
    assert_eq!(in_redis.len(), tasks * per_task);
    assert_writer_order(&in_redis, tasks, per_task);
    let ids: std::collections::HashSet<MessageId> = in_redis.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), tasks * per_task, "a message was doubled");
    assert_eq!(manager.history(&key).await.unwrap().to_vec(), in_redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_journal_refuses_clearly_and_keeps_what_it_has() {
    let Some(mut server) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let manager = journaled(&server.url(), dir.path(), 4096).await;
    let key = unique_key("full");
    server.stop();
    let mut acknowledged = Vec::new();
    let err = loop {
        let m = Message::user(format!("{} {}", acknowledged.len(), "x".repeat(300)));
        match manager.append(&key, vec![m.clone()]).await {
            Ok(r) => {
                assert!(r.journaled);
                acknowledged.push(m);
                assert!(acknowledged.len() < 100, "the journal never filled up");
            }
            Err(e) => break e,
        }
    };
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("journal is full"), "{err}");
    assert!(acknowledged.len() >= 5, "only {} fit", acknowledged.len());
    server.start_again();
    wait_drained(&manager, DRAIN_CAP).await;
    let in_redis = plain(&server.url())
        .await
        .history(&key)
        .await
        .unwrap()
        .to_vec();
    assert_eq!(
        in_redis, acknowledged,
        "every acknowledged message reached Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_entries_twice_stores_them_once() {
    let Some(server) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = unique_key("twice");
    let messages: Vec<Message> = (0..6).map(|i| Message::user(format!("m{i}"))).collect();
    // The journal as a process of this data dir and this Redis writes it.
    let identity = open_store(&server.url(), &options())
        .await
        .unwrap()
        .identity();
    let journal = Journal::open(
        JournalConfig {
            path: dir.path().join("journal.db"),
            max_bytes: 1 << 20,
        },
        &identity,
    )
    .unwrap();
    journal.append(&key, &messages).await.unwrap();
    let manager = journaled_with(&server.url(), dir.path(), 1 << 20, false).await;
    let first = manager.replay_journal().await.unwrap();
    assert_eq!(first.replayed, 6);
    assert_eq!(first.already_stored, 0);
    // As if the process died after Redis took the entries but before the journal
    // forgot them: the same entries are pending again.
    journal.append(&key, &messages).await.unwrap();
    let second = manager.replay_journal().await.unwrap();
    assert_eq!(second.replayed, 6);
    assert_eq!(
        second.already_stored, 6,
        "the second replay must store nothing new"
    );
    assert_eq!(second.remaining, 0);
    let in_redis = plain(&server.url())
        .await
        .history(&key)
        .await
        .unwrap()
        .to_vec();
    assert_eq!(in_redis, messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_never_saw_the_session_reads_the_journal_as_partial() {
    let Some(mut server) = durable_redis_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = unique_key("partial");
    plain(&server.url())
        .await
        .append(&key, vec![Message::user("stored before")])
        .await
        .unwrap();
    server.stop();
    {
        let writer = journaled(&server.url(), dir.path(), 1 << 20).await;
        let r = writer
            .append(&key, vec![Message::user("journaled")])
            .await
            .unwrap();
        assert!(r.journaled);
    }
    // A new process on the same data dir, Redis still down.
    let reader = journaled(&server.url(), dir.path(), 1 << 20).await;
    let history = reader.history(&key).await.unwrap();
    assert!(
        history.is_partial(),
        "a history this process never saw must say it may be partial"
    );
    assert_eq!(contents(&history.to_vec()), ["journaled"]);
    server.start_again();
    // The background task or this call moves the entry; either way it ends in Redis once.
    reader.replay_journal().await.unwrap();
    wait_drained(&reader, DRAIN_CAP).await;
    let history = reader.history(&key).await.unwrap();
    assert!(!history.is_partial());
    assert_eq!(contents(&history.to_vec()), ["stored before", "journaled"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_entries_take_their_place_by_created_at_on_every_server() {
    let Some(server) = durable_redis_or_skip() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    // Server A reaches Redis through the proxy; server B directly.
    let a = journaled(&proxy.redis_url(), dir.path(), 1 << 20).await;
    let b = plain(&server.url()).await;
    let key = unique_key("order");
    a.append(&key, vec![Message::user("0 first")])
        .await
        .unwrap();
    assert_eq!(b.history(&key).await.unwrap().len(), 1);
    proxy.cut();
    let r = a
        .append(&key, vec![Message::user("1 from A while partitioned")])
        .await
        .unwrap();
    assert!(r.journaled);
    tokio::time::sleep(Duration::from_millis(5)).await;
    b.append(&key, vec![Message::assistant("2 from B later")])
        .await
        .unwrap();
    assert_eq!(
        contents(&b.history(&key).await.unwrap().to_vec()),
        ["0 first", "2 from B later"]
    );
    proxy.restore();
    wait_drained(&a, DRAIN_CAP).await;
    let expected = ["0 first", "1 from A while partitioned", "2 from B later"];
    assert_eq!(contents(&a.history(&key).await.unwrap().to_vec()), expected);
    assert_eq!(
        contents(&b.history(&key).await.unwrap().to_vec()),
        expected,
        "B's cache converges"
    );
    let fresh = plain(&server.url()).await;
    assert_eq!(
        contents(&fresh.history(&key).await.unwrap().to_vec()),
        expected
    );
    assert_eq!(
        contents(&fresh.export(key.user()).await.unwrap().sessions[0].messages),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_store_never_holds_a_turn_longer_than_the_timeout() {
    let Some(server) = durable_redis_or_skip() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let manager = journaled(&proxy.redis_url(), dir.path(), 1 << 20).await;
    let key = unique_key("partition");
    manager
        .append(&key, vec![Message::user("before")])
        .await
        .unwrap();
    proxy.cut();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = Instant::now();
        manager.history(&key).await.unwrap();
        manager
            .append(&key, vec![Message::user(format!("during {i}"))])
            .await
            .unwrap();
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest <= turn_bound(), "a turn took {slowest:?}");
    let status = manager.status().await.unwrap();
    assert_eq!(status.mode, Mode::Degraded);
    assert_eq!(status.pending_sync, 20);
    assert!(status.oldest_pending_secs.is_some());
    assert!(!status.store.contains('@') || status.store == redact_url(&status.store));
    proxy.restore();
    wait_drained(&manager, DRAIN_CAP).await;
    let in_redis = plain(&server.url()).await.history(&key).await.unwrap();
    assert_eq!(in_redis.len(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_stops_answering_is_replaced() {
    let Some(server) = durable_redis_or_skip() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    // The connection's own response timeout is far away: only the manager's store
    // timeout (250 ms) notices the silence.
    let patient = StoreOptions {
        command_timeout: Duration::from_secs(60),
        ..options()
    };
    let manager = journaled_on(&proxy.redis_url(), dir.path(), 1 << 20, true, patient).await;
    let key = unique_key("stalled");
    manager
        .append(&key, vec![Message::user("before")])
        .await
        .unwrap();
    // The open connection goes silent without closing (a peer that vanished, a failover
    // behind a name); a new connection would get through.
    proxy.stall_open();
    let receipt = manager
        .append(&key, vec![Message::user("during")])
        .await
        .unwrap();
    assert!(
        receipt.journaled,
        "the silent connection timed out into the journal"
    );
    // The next calls use a new connection: the journal drains although the old
    // connection is still frozen.
    wait_drained(&manager, DRAIN_CAP).await;
    let in_redis = plain(&server.url()).await.history(&key).await.unwrap();
    assert_eq!(contents(&in_redis.to_vec()), ["before", "during"]);
    assert_eq!(
        contents(&manager.history(&key).await.unwrap().to_vec()),
        ["before", "during"]
    );
    proxy.restore();
}

#[tokio::test]
async fn a_bad_key_or_message_is_refused_even_when_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let port = ragchat_testkit::free_port();
    let manager = journaled(&format!("redis://127.0.0.1:{port}"), dir.path(), 1 << 20).await;
    let key = SessionKey::new("u", "s").unwrap();
    assert!(manager.append(&key, vec![Message::user("")]).await.is_err());
    let r = manager
        .append(&key, vec![Message::user("ok")])
        .await
        .unwrap();
    assert!(r.journaled);
    assert_eq!(manager.status().await.unwrap().pending_sync, 1);
    // Listing needs the store: a clear Unavailable, not a hang or a wrong answer.
    let err = manager.list_sessions("u").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
