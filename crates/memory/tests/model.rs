//! Property test: random interleavings of appends, reads, Redis crashes, network
//! outages and process restarts, against a model of the expected history.
//!
//! The model is simple on purpose: every acknowledged append is in the conversation,
//! once, in the order it was acknowledged. Whatever happens in between, reads never
//! show anything outside the model or out of its order, and once the store is back
//! and the journal drained, the store holds exactly the model.
//!
//! The second property runs the same against a mixed deployment: a server of the last v1
//! release (its scripts, kept as fixtures) appends to the same conversations beside this
//! one, straight to Redis. Each writer's messages then keep their own order, but not
//! their place among the other's (this server's journal replays after the old server's
//! later appends); everything acknowledged is stored once.
#![cfg(all(feature = "redis", feature = "sqlite"))]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use ragchat_memory::backend::redis::v1;
use ragchat_memory::journal::JournalConfig;
use ragchat_memory::manager::BreakerConfig;
use ragchat_memory::{
    open_store, ManagerConfig, Message, Mode, SessionKey, SessionManager, StoreOptions,
};
use ragchat_testkit::TcpProxy;

#[derive(Clone, Debug)]
enum Op {
    /// Append `n` messages to session `s`.
    Append { s: usize, n: usize },
    /// Read session `s`.
    Read { s: usize },
    /// SIGKILL Redis and start it again (AOF, fsync always).
    CrashRedis,
    /// Cut the network between this process and Redis.
    Partition,
    /// Heal the network.
    Heal,
    /// The app process restarts: a new manager on the same data dir (journal).
    RestartApp,
    /// A v1 server appends `n` messages to session `s`, straight to Redis.
    OldServer { s: usize, n: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..3usize, 1..4usize).prop_map(|(s, n)| Op::Append { s, n }),
        3 => (0..3usize).prop_map(|s| Op::Read { s }),
        1 => Just(Op::CrashRedis),
        1 => Just(Op::Partition),
        1 => Just(Op::Heal),
        1 => Just(Op::RestartApp),
    ]
}

/// The ops of a mixed deployment: the same, and a v1 server's appends.
fn mixed_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => op(),
        2 => (0..3usize, 1..3usize).prop_map(|(s, n)| Op::OldServer { s, n }),
    ]
}

const SESSIONS: usize = 3;

async fn manager(url: &str, dir: &std::path::Path) -> SessionManager {
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(200),
        command_timeout: Duration::from_millis(200),
        lazy: true,
        ..StoreOptions::default()
    };
    SessionManager::with_journal(
        open_store(url, &opts).await.unwrap(),
        ManagerConfig {
            journal: Some(JournalConfig {
                path: dir.join("journal.db"),
                max_bytes: 1 << 30,
            }),
            store_timeout: Duration::from_millis(200),
            breaker: BreakerConfig {
                failure_threshold: 1,
                base_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
            },
            replay_interval: Duration::from_millis(50),
            ..ManagerConfig::default()
        },
    )
    .unwrap()
}

/// `seen` is a subsequence of `model` (same order, nothing extra).
fn is_subsequence(seen: &[String], model: &[String]) -> bool {
    let mut it = model.iter();
    seen.iter().all(|s| it.any(|m| m == s))
}

/// The messages of one writer (this server's start with "m", the v1 server's with "o").
fn by(writer: char, texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .filter(|t| t.starts_with(writer))
        .cloned()
        .collect()
}

/// In a mixed deployment: `seen` holds each writer's messages as a subsequence of that
/// writer's in `model`, nothing else, and each at most once.
fn each_writer_in_order(seen: &[String], model: &[String]) -> bool {
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    unique.len() == seen.len()
        && seen
            .iter()
            .all(|t| t.starts_with('m') || t.starts_with('o'))
        && ['m', 'o']
            .iter()
            .all(|&w| is_subsequence(&by(w, seen), &by(w, model)))
}

/// The contents of `key`'s history as `manager` reads it.
async fn contents(manager: &SessionManager, key: &SessionKey) -> Vec<String> {
    manager
        .history(key)
        .await
        .unwrap()
        .iter()
        .map(|m| m.content.clone())
        .collect()
}

async fn run(ops: Vec<Op>, mixed: bool) {
    let Some(mut server) = ragchat_testkit::durable_redis_or_skip() else {
        return;
    };
    let proxy = TcpProxy::start(format!("127.0.0.1:{}", server.port()).parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<SessionKey> = (0..SESSIONS)
        .map(|s| SessionKey::new("model", format!("s{s}")).unwrap())
        .collect();
    let mut model: HashMap<usize, Vec<String>> = HashMap::new();
    let mut app = manager(&proxy.redis_url(), dir.path()).await;
    let mut counter = 0;
    let mut partitioned = false;
    for op in &ops {
        match op {
            Op::Append { s, n } => {
                let messages: Vec<Message> = (0..*n)
                    .map(|_| {
                        counter += 1;
                        Message::user(format!("m{counter}"))
                    })
                    .collect();
                let texts: Vec<String> = messages.iter().map(|m| m.content.clone()).collect();
                app.append(&keys[*s], messages)
                    .await
                    .expect("appends never fail (journal)");
                model.entry(*s).or_default().extend(texts);
            }
            Op::Read { s } => {
                let history = app
                    .history(&keys[*s])
                    .await
                    .expect("reads never fail (journal)");
                let seen: Vec<String> = history.iter().map(|m| m.content.clone()).collect();
                let expected = model.get(s).cloned().unwrap_or_default();
                if mixed {
                    assert!(
                        each_writer_in_order(&seen, &expected),
                        "read {seen:?} vs model {expected:?} after {ops:?}"
                    );
                    // This server's own messages are all in a complete read; the old
                    // server's reach it when Redis's invalidation does, moments later.
                    if !history.is_partial() && !partitioned {
                        assert_eq!(
                            by('m', &seen),
                            by('m', &expected),
                            "a complete read must hold this server's messages; ops {ops:?}"
                        );
                    }
                    continue;
                }
                assert!(
                    is_subsequence(&seen, &expected),
                    "read {seen:?} vs model {expected:?} after {ops:?}"
                );
                if !history.is_partial() && !partitioned {
                    assert_eq!(
                        seen, expected,
                        "a complete read must equal the model; ops {ops:?}"
                    );
                }
            }
            Op::CrashRedis => tokio::task::block_in_place(|| server.restart()),
            Op::Partition => {
                proxy.cut();
                partitioned = true;
            }
            Op::Heal => {
                proxy.restore();
                partitioned = false;
            }
            Op::RestartApp => {
                drop(app);
                app = manager(&proxy.redis_url(), dir.path()).await;
            }
            Op::OldServer { s, n } => {
                let messages: Vec<Message> = (0..*n)
                    .map(|_| {
                        counter += 1;
                        Message::user(format!("o{counter}"))
                    })
                    .collect();
                v1::append(&server.url(), &keys[*s], &messages, 3600, 0)
                    .await
                    .expect("the old server reaches Redis");
                model
                    .entry(*s)
                    .or_default()
                    .extend(messages.into_iter().map(|m| m.content));
            }
        }
    }
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = app.replay_journal().await;
        let status = app.status().await.unwrap();
        if status.pending_sync == 0 && status.mode == Mode::Normal {
            break;
        }
        assert!(Instant::now() < deadline, "journal not drained: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reader = SessionManager::new(
        open_store(&server.url(), &StoreOptions::default())
            .await
            .unwrap(),
        ManagerConfig::default(),
    );
    for (s, key) in keys.iter().enumerate() {
        let stored = contents(&reader, key).await;
        let expected = model.get(&s).cloned().unwrap_or_default();
        if mixed {
            assert!(
                each_writer_in_order(&stored, &expected) && stored.len() == expected.len(),
                "session {s}: stored {stored:?} vs model {expected:?} after {ops:?}"
            );
        } else {
            assert_eq!(stored, expected, "session {s} after {ops:?}");
        }
        // The app's cache converges to the store (the old server's last write reaches
        // it with Redis's invalidation).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let cached = contents(&app, key).await;
            if cached == stored {
                break;
            }
            assert!(
                mixed && Instant::now() < deadline,
                "the app's cache {cached:?} vs the store {stored:?}; ops {ops:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

proptest! {
    // Each case starts a real redis-server and may crash it: few cases, short sequences.
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn history_matches_the_model_through_crashes_and_outages(ops in proptest::collection::vec(op(), 1..25)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(ops, false));
    }

    #[test]
    fn beside_a_v1_server_nothing_is_lost_or_doubled(ops in proptest::collection::vec(mixed_op(), 1..25)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(ops, true));
    }
}
