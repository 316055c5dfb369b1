//! Races between the journal replay and a turn's own store calls, against a real
//! redis-server, made deterministic: a wrapper around the Redis store holds one call at
//! a chosen point (as if the app's thread were descheduled there) while the replay
//! runs. Every read must still show every acknowledged message, or say it is partial.
//!
//! The flake these come from (`model.rs`, second regression seed): after an app
//! restart with messages of session 1 still in the journal, a complete read returned
//! only the messages appended after the restart.
#![cfg(all(feature = "redis", feature = "sqlite"))]

mod replay_support;

use replay_support::{messages, setup, When};

/// The model flake: the turn's append reaches Redis before the replay's, and the
/// replay finishes before the turn handles its reply. The session looked brand new in
/// that reply (3 messages from seq 1), but the journal held older ones a moment before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_racing_the_replay_is_not_cached_as_the_whole_conversation() {
    let Some(t) = setup(&["m2", "m3", "m4"]).await else {
        return;
    };
    let gate = t.held.hold_append("m14", When::After);
    let turn = tokio::spawn({
        let (manager, key) = (t.manager.clone(), t.key.clone());
        async move { manager.append(&key, messages(&["m14", "m15", "m16"])).await }
    });
    gate.reached.notified().await;
    let report = t.manager.replay_journal().await.unwrap();
    assert_eq!(report.replayed, 3, "{report:?}");
    gate.open.notify_one();
    let receipt = turn.await.unwrap().unwrap();
    assert!(!receipt.journaled);

    let (seen, partial) = t.read().await;
    assert!(!partial);
    assert_eq!(seen, ["m2", "m3", "m4", "m14", "m15", "m16"]);
}

/// A read that finds the replay busy loads the store, then the replay moves the
/// journaled messages to the store and out of the journal before the read looks at
/// the journal: they must not fall between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_during_the_replay_sees_what_moves_from_the_journal_to_the_store() {
    let Some(t) = setup(&["m2", "m3", "m4"]).await else {
        return;
    };
    let receipt = t
        .manager
        .append(&t.key, messages(&["m14", "m15", "m16"]))
        .await
        .unwrap();
    assert!(!receipt.journaled);

    let replay_gate = t.held.hold_append("m2", When::Before);
    let replay = tokio::spawn({
        let manager = t.manager.clone();
        async move { manager.replay_journal().await }
    });
    replay_gate.reached.notified().await;
    let load_gate = t.held.hold_load(&t.key);
    let read = tokio::spawn({
        let (manager, key) = (t.manager.clone(), t.key.clone());
        async move { manager.history(&key).await }
    });
    load_gate.reached.notified().await;
    replay_gate.open.notify_one();
    let report = replay.await.unwrap().unwrap();
    assert_eq!(report.replayed, 3, "{report:?}");
    load_gate.open.notify_one();
    let history = read.await.unwrap().unwrap();

    let seen: Vec<String> = history.iter().map(|m| m.content.clone()).collect();
    assert!(!history.is_partial());
    assert_eq!(seen, ["m2", "m3", "m4", "m14", "m15", "m16"]);
    assert_eq!(t.read().await, (seen, false));
}

/// Redis does not tell a connection about its own writes (tracking with NOLOOP), so a
/// copy this process caches stays "current" after its replay appends to the session:
/// the replay must drop it. Here the journaled messages come from another process on
/// the same data dir, found by the replay's scan of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_drops_a_cached_copy_its_own_appends_made_stale() {
    let Some(t) = setup(&[]).await else {
        return;
    };
    t.manager
        .append(&t.key, messages(&["m1", "m2"]))
        .await
        .unwrap();
    assert_eq!(t.read().await, (vec!["m1".into(), "m2".into()], false));

    t.journal_elsewhere(&["n1", "n2"]).await;
    let report = t.manager.replay_journal().await.unwrap();
    assert_eq!(report.replayed, 2, "{report:?}");

    let (seen, partial) = t.read().await;
    assert!(!partial);
    assert_eq!(seen, ["m1", "m2", "n1", "n2"]);
}
