//! The dedupe buckets of a long conversation (`buckets.lua`): they split as the session
//! stores more ids, so none grows with the conversation's length, every id ever stored
//! stays in exactly one of them, and no replay, through either append script, stores a
//! message twice. A server of the first v2 release (whose buckets never split) writing
//! beside this one doubles nothing this one replays.
#![cfg(feature = "redis")]

mod redis_support;

use std::collections::HashSet;

use ragchat_memory::backend::redis::keys::SessionKeys;
use ragchat_memory::backend::redis::v2_0;
use ragchat_memory::store::AppendOptions;
use ragchat_memory::testing::unique_key;
use ragchat_memory::{Message, Quotas, ReadFrom, ReadLimit, SessionKey, SessionStore, Ttl};
use ragchat_testkit::{redis_or_skip, RedisServer};
use redis::AsyncCommands;
use redis_support::connect;

fn opts(max_messages: u64, refresh_ttl: bool) -> AppendOptions {
    AppendOptions {
        ttl: Ttl::secs(3600),
        max_messages,
        refresh_ttl,
        quotas: Quotas::UNBOUNDED,
    }
}

/// The session's bucket count and each bucket's number of ids.
async fn buckets(server: &RedisServer, key: &SessionKey) -> (u64, Vec<usize>, Vec<Vec<u8>>) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let hash = SessionKeys::new(key).hash;
    let fields: Vec<(Vec<u8>, Vec<u8>)> = conn.hgetall(&hash).await.unwrap();
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    let mut count = 256;
    for (field, value) in fields {
        if field == b"lh" {
            count = String::from_utf8(value).unwrap().parse().unwrap();
        } else if field.len() == 2 && value.is_empty() {
            // A home whose bucket split (buckets.lua), left for first-release servers.
        } else if field.first() == Some(&b'#') {
            assert_eq!(value.len() % 16, 0, "a bucket of whole ids");
            sizes.push(value.len() / 16);
            ids.extend(value.chunks(16).map(<[u8]>::to_vec));
        }
    }
    (count, sizes, ids)
}

async fn stored_texts(store: &dyn SessionStore, key: &SessionKey) -> Vec<String> {
    store
        .load(
            key,
            ReadFrom::After(0),
            ReadLimit::new(1_000_000, u64::MAX),
            Ttl::secs(3600),
        )
        .await
        .unwrap()
        .map(|l| l.messages.into_iter().map(|(_, m)| m.content).collect())
        .unwrap_or_default()
}

fn batch(from: usize, n: usize) -> Vec<Message> {
    (from..from + n)
        .map(|i| Message::user(format!("m{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_split_as_a_conversation_grows_and_no_replay_stores_twice() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let store = connect(&server).await;
    let key = unique_key("buckets");
    let cap = 300;
    // 4000 ids in one append, then 1500 turns: 7000 ids, past 256 buckets of 16.
    let mut sent = batch(0, 4000);
    store.append(&key, &sent, opts(cap, true)).await.unwrap();
    let (count, sizes, _) = buckets(&server, &key).await;
    assert_eq!(count, 256, "no split below 16 ids a bucket");
    assert!(sizes.iter().all(|&s| s < 40), "{sizes:?}");
    for t in 0..1500 {
        let turn = batch(4000 + 2 * t, 2);
        store.append(&key, &turn, opts(cap, false)).await.unwrap();
        sent.extend(turn);
    }
    assert!(store.lean_appends() >= 1400, "{}", store.lean_appends());

    let (count, sizes, ids) = buckets(&server, &key).await;
    assert!(count >= 7000 / 16, "{count} buckets for 7000 ids");
    assert_eq!(sizes.len() as u64, count, "one field per bucket");
    // 16 ids a bucket on average, up to twice that in a bucket this round has not split
    // yet; and a split shares a bucket's ids, it does not leave the new one empty.
    let fullest = sizes.iter().max().copied().unwrap_or(0);
    assert!(fullest <= 64, "the fullest bucket holds {fullest} ids");
    let empty = sizes.iter().filter(|&&s| s == 0).count();
    assert!(empty <= 1, "{empty} empty buckets: {sizes:?}");
    // Every id ever stored, trimmed ones too, once.
    let unique: HashSet<&Vec<u8>> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (7000, 7000));
    let expected: HashSet<Vec<u8>> = sent
        .iter()
        .map(|m| m.id.as_uuid().as_bytes().to_vec())
        .collect();
    assert_eq!(
        unique.into_iter().cloned().collect::<HashSet<_>>(),
        expected
    );

    // Replays: two at a time (the lean script declines, the full one skips them), and
    // all of them in big batches.
    for pair in sent.chunks(2).step_by(97) {
        let outcome = store.append(&key, pair, opts(cap, false)).await.unwrap();
        assert_eq!(
            outcome.stored(),
            0,
            "a replay of {:?} was stored",
            pair[0].content
        );
    }
    for chunk in sent.chunks(1000) {
        let outcome = store.append(&key, chunk, opts(cap, false)).await.unwrap();
        assert_eq!(outcome.stored(), 0);
    }
    let texts = stored_texts(&store, &key).await;
    let newest: Vec<String> = sent[7000 - cap as usize..]
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(texts, newest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_release_server_beside_this_one_doubles_nothing_this_one_replays() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let store = connect(&server).await;
    let key = unique_key("v2-0");
    store
        .append(&key, &batch(0, 4500), opts(0, true))
        .await
        .unwrap();
    for t in 0..200 {
        store
            .append(&key, &batch(4500 + 2 * t, 2), opts(0, false))
            .await
            .unwrap();
    }
    let (count, _, _) = buckets(&server, &key).await;
    assert!(count > 256, "the buckets split");

    // The old server appends into the split session: its ids go to their home buckets.
    let old: Vec<Message> = batch(10_000, 40);
    for pair in old.chunks(2) {
        let seqs = v2_0::append(&server.url(), &key, pair, 3600, 0)
            .await
            .unwrap();
        assert!(seqs.iter().all(|&s| s > 0));
    }
    // This server replays them, lean and full: nothing is stored again.
    for pair in old.chunks(2) {
        let outcome = store.append(&key, pair, opts(0, false)).await.unwrap();
        assert_eq!(outcome.stored(), 0, "{:?} doubled", pair[0].content);
    }
    let outcome = store.append(&key, &old, opts(0, true)).await.unwrap();
    assert_eq!(outcome.stored(), 0);
    // And its own appends go on, splitting the buckets the old server wrote into.
    for t in 0..300 {
        store
            .append(&key, &batch(20_000 + 2 * t, 2), opts(0, false))
            .await
            .unwrap();
    }
    let outcome = store.append(&key, &old, opts(0, false)).await.unwrap();
    assert_eq!(outcome.stored(), 0, "after more splits");

    let texts = stored_texts(&store, &key).await;
    let unique: HashSet<&String> = texts.iter().collect();
    assert_eq!(texts.len(), 4500 + 400 + 40 + 600);
    assert_eq!(unique.len(), texts.len(), "a message stored twice");
}

/// A v1 conversation trimmed at its cap remembered only the ids it kept, so after its
/// conversion the seq runs far ahead of the ids: splitting then meets empty buckets, and
/// must not leave empty fields behind for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitting_past_what_a_converted_session_remembers_makes_no_empty_fields() {
    let Some(server) = redis_or_skip() else {
        return;
    };
    let key = unique_key("v1-capped");
    let sent = batch(0, 5000);
    for chunk in sent.chunks(100) {
        ragchat_memory::backend::redis::v1::append(&server.url(), &key, chunk, 3600, 100)
            .await
            .unwrap();
    }
    let store = connect(&server).await;
    assert_eq!(stored_texts(&store, &key).await.len(), 100, "converted");
    for t in 0..200 {
        store
            .append(&key, &batch(10_000 + 2 * t, 2), opts(100, false))
            .await
            .unwrap();
    }
    let (count, sizes, ids) = buckets(&server, &key).await;
    assert!(count > 256, "the buckets split: {count}");
    assert!(
        sizes.iter().all(|&s| s > 0),
        "an empty bucket field: {sizes:?}"
    );
    assert_eq!(ids.len(), 100 + 400, "the kept ids and the new ones");
    for pair in sent[4900..].chunks(2) {
        let outcome = store.append(&key, pair, opts(100, false)).await.unwrap();
        assert_eq!(outcome.stored(), 0);
    }
}
