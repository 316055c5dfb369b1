//! The lean append (`turn.lua`) against the full one (`append.lua`): the same calls, made
//! for two users on one harness Redis, one store taking the lean script where it can and
//! one never, leave the same replies and the same keys behind (timestamps aside). The
//! calls cover what the lean script must decline and hand over: a replay of a stored or
//! trimmed message, an id given twice, another writer moving the seq, quotas, a TTL
//! refresh, the hot tier's PERSIST when an archived session gets new messages.
#![cfg(feature = "redis")]

mod redis_support;

use std::collections::BTreeMap;

use ragchat_memory::backend::redis::RedisStore;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{MemoryError, Message, Quotas, SessionKey, SessionStore, StoreOptions, Ttl};
use ragchat_testkit::{redis_or_skip, RedisServer};
use redis::AsyncCommands;
use redis_support::connect;

fn opts(max_messages: u64, refresh_ttl: bool, quotas: Quotas) -> AppendOptions {
    AppendOptions {
        ttl: Ttl::secs(3600),
        max_messages,
        refresh_ttl,
        quotas,
    }
}

/// Every key of `user`, named without the user, with its type, its contents (hash fields
/// that hold times left out, set members without their scores) and whether it expires.
async fn snapshot(server: &RedisServer, user: &str) -> BTreeMap<String, String> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys(format!("ragchat:{{{user}}}:*")).await.unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let contents = match kind.as_str() {
            "list" => {
                let values: Vec<Vec<u8>> = conn.lrange(&key, 0, -1).await.unwrap();
                format!("{values:?}")
            }
            "hash" => {
                let fields: BTreeMap<Vec<u8>, Vec<u8>> = conn.hgetall(&key).await.unwrap();
                let kept: BTreeMap<_, _> = fields
                    .into_iter()
                    .filter(|(f, _)| f != b"created_at" && f != b"updated_at")
                    .collect();
                format!("{kept:?}")
            }
            "zset" => {
                let members: Vec<String> = conn.zrange(&key, 0, -1).await.unwrap();
                format!("{members:?}")
            }
            other => other.to_string(),
        };
        let pttl: i64 = conn.pttl(&key).await.unwrap();
        let expiry = if pttl > 0 { "expires" } else { "persists" };
        out.insert(
            key.replacen(user, "U", 1),
            format!("{kind} {expiry} {contents}"),
        );
    }
    out
}

/// What an append answered, times and TTL left out.
fn reply(result: Result<ragchat_memory::store::AppendOutcome, MemoryError>) -> String {
    match result {
        Ok(o) => format!(
            "seqs {:?} count {} bytes {} seq {} trimmed {} title {:?} expires {}",
            o.seqs,
            o.meta.message_count,
            o.meta.bytes,
            o.meta.last_seq,
            o.meta.trimmed_seq,
            o.meta.title,
            o.meta.ttl_remaining_secs.is_some()
        ),
        Err(e) => format!("error {e}"),
    }
}

struct Pair {
    lean: RedisStore,
    full: RedisStore,
    lean_key: SessionKey,
    full_key: SessionKey,
}

impl Pair {
    async fn new(server: &RedisServer, hot: bool) -> Pair {
        let full = RedisStore::connect(
            &server.url(),
            &StoreOptions {
                lean_append: false,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        let lean = connect(server).await;
        let (lean, full) = if hot {
            (lean.into_hot_tier(), full.into_hot_tier())
        } else {
            (lean, full)
        };
        Pair {
            lean,
            full,
            lean_key: unique_key("lean"),
            full_key: unique_key("lean"),
        }
    }

    /// The same append for both users; their replies must agree.
    async fn append(&self, messages: &[Message], opts: AppendOptions) -> String {
        let lean = reply(self.lean.append(&self.lean_key, messages, opts).await);
        let full = reply(self.full.append(&self.full_key, messages, opts).await);
        assert_eq!(
            lean, full,
            "the lean and the full append answered differently"
        );
        lean
    }

    async fn assert_same_keys(&self, server: &RedisServer) {
        let lean = snapshot(server, self.lean_key.user()).await;
        let full = snapshot(server, self.full_key.user()).await;
        assert!(!lean.is_empty());
        assert_eq!(
            lean, full,
            "the lean and the full append left different keys"
        );
    }
}

fn turn(i: usize) -> Vec<Message> {
    vec![
        Message::user(format!("question {i}: what is item {i}?")),
        Message::assistant(format!(
            "answer {i}: item {i} is a thing of {} bytes",
            i * 7
        )),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lean_append_writes_what_the_full_one_writes() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let pair = Pair::new(&server, false).await;
    let plain = opts(0, false, Quotas::UNBOUNDED);
    let mut sent = Vec::new();

    // A new session: the full script creates it (the lean one never does).
    sent.push(turn(0));
    pair.append(&sent[0], opts(0, true, Quotas::UNBOUNDED))
        .await;
    for i in 1..8 {
        sent.push(turn(i));
        pair.append(&sent[i], plain).await;
    }
    pair.assert_same_keys(&server).await;

    // Replays of stored messages, and an id given twice in one call, store nothing new.
    let replayed = pair.append(&sent[3], plain).await;
    assert!(replayed.starts_with("seqs [None, None]"), "{replayed}");
    let twice = Message::user("said twice");
    pair.append(&[twice.clone(), twice.clone()], plain).await;
    // One message, and a TTL refresh (the full script's).
    pair.append(&[Message::user("one alone")], plain).await;
    pair.append(&turn(8), opts(0, true, Quotas::UNBOUNDED))
        .await;
    pair.assert_same_keys(&server).await;

    // At a cap of 6, every append trims; a replay of a trimmed message stores nothing.
    let capped = opts(6, false, Quotas::UNBOUNDED);
    for i in 9..15 {
        sent.push(turn(i));
        pair.append(sent.last().unwrap(), capped).await;
    }
    let trimmed_replay = pair.append(&sent[1], capped).await;
    assert!(
        trimmed_replay.starts_with("seqs [None, None]"),
        "{trimmed_replay}"
    );
    pair.assert_same_keys(&server).await;

    // Another writer moves the seq behind each store's back.
    let other = connect(&server).await;
    let elsewhere = turn(15);
    for key in [&pair.lean_key, &pair.full_key] {
        other.append(key, &elsewhere, capped).await.unwrap();
    }
    pair.append(&turn(16), capped).await;
    pair.assert_same_keys(&server).await;

    // Quotas: the user's bytes and the session's bytes, each just too small.
    let used = |s: &str| {
        s.split(" bytes ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap()
    };
    let now = pair.append(&turn(17), plain).await;
    let bytes = used(&now);
    let just_too_small = [
        Quotas {
            session_bytes: bytes + 10,
            ..Quotas::UNBOUNDED
        },
        Quotas {
            user_bytes: bytes + 10,
            ..Quotas::UNBOUNDED
        },
    ];
    for quotas in just_too_small {
        let refused = pair.append(&turn(18), opts(0, false, quotas)).await;
        assert!(refused.starts_with("error"), "{quotas:?}: {refused}");
    }
    // Within generous quotas the lean script keeps the user's running total.
    let roomy = Quotas {
        session_bytes: 1 << 20,
        user_bytes: 1 << 20,
        ..Quotas::UNBOUNDED
    };
    for i in 19..23 {
        pair.append(&turn(i), opts(0, false, roomy)).await;
    }
    pair.assert_same_keys(&server).await;

    assert!(
        pair.lean.lean_appends() >= 15,
        "the lean script was taken {} times",
        pair.lean.lean_appends()
    );
    assert_eq!(pair.full.lean_appends(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_front_of_an_archive_the_lean_append_keeps_unarchived_sessions() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let pair = Pair::new(&server, true).await;
    let plain = opts(0, false, Quotas::UNBOUNDED);
    pair.append(&turn(0), opts(0, true, Quotas::UNBOUNDED))
        .await;
    for i in 1..4 {
        pair.append(&turn(i), plain).await;
    }
    // The archive takes everything: the session gets its TTL back...
    for (store, key) in [(&pair.lean, &pair.lean_key), (&pair.full, &pair.full_key)] {
        let (arch, seq) = store
            .mark_archived(key, "no-lock", 8, Ttl::secs(3600))
            .await
            .unwrap();
        assert_eq!((arch, seq), (8, 8));
    }
    let archived = snapshot(&server, pair.lean_key.user()).await;
    assert!(
        archived.values().all(|v| v.contains(" expires ")),
        "{archived:?}"
    );
    // ...and loses it with the next message, until the archive has that one too.
    pair.append(&turn(4), plain).await;
    pair.append(&turn(5), plain).await;
    let pending = snapshot(&server, pair.lean_key.user()).await;
    assert!(
        pending.values().all(|v| v.contains(" persists ")),
        "{pending:?}"
    );
    pair.assert_same_keys(&server).await;
    assert!(pair.lean.lean_appends() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_4096_ids_the_lean_append_splits_buckets_as_the_full_one_does() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let pair = Pair::new(&server, false).await;
    let many: Vec<Message> = (0..4090)
        .map(|i| Message::user(format!("early {i}")))
        .collect();
    pair.append(&many, opts(3000, true, Quotas::UNBOUNDED))
        .await;
    // Splits start past 16 ids a bucket (4096 for 256), one per 16 ids from then on;
    // every fifth turn refreshes the TTL, so the full script splits some of them.
    for i in 0..60 {
        let refresh = i % 5 == 4;
        pair.append(&turn(i), opts(3000, refresh, Quotas::UNBOUNDED))
            .await;
    }
    pair.assert_same_keys(&server).await;
    for chunk in many.chunks(2).step_by(101) {
        let replayed = pair
            .append(chunk, opts(3000, false, Quotas::UNBOUNDED))
            .await;
        assert!(replayed.starts_with("seqs [None, None]"), "{replayed}");
    }
    pair.assert_same_keys(&server).await;
    let hash = ragchat_memory::backend::redis::keys::SessionKeys::new(&pair.lean_key).hash;
    let buckets: u64 = server.cli(&["HGET", &hash, "lh"]).parse().unwrap();
    assert!(buckets > 256, "the buckets split: {buckets}");
    assert!(pair.lean.lean_appends() >= 40);
}
