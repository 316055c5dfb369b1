//! The search evaluation (issue 17, item 3): the synthetic conversations of
//! `eval/search` (three users, twelve long sessions, topics that recur across users
//! and sessions, distractors that share words with the answers) are stored, each
//! question is searched as its user would (all of their conversations, five hits),
//! and recall@5 (the share of questions whose message is among the five) is printed
//! and must be at least 0.9, on SQLite and on PostgreSQL (a harness server; skipped
//! with a note where it is not installed).
#![cfg(all(feature = "sqlite", feature = "postgres"))]

use ragchat_memory::backend::sqlite::SqliteStore;
use ragchat_memory::testing::eval_set::{build, store_set, EvalSet};
use ragchat_memory::{open_store, SearchQuery, SessionStore, StoreOptions};

/// The least recall@5 accepted (the acceptance criterion).
const MIN_RECALL_AT_5: f64 = 0.9;

/// Asks every question, prints the misses and recall@5.
async fn recall_at_5(store: &dyn SessionStore, set: &EvalSet) -> f64 {
    let stored: usize = set.sessions.iter().map(|(_, m)| m.len()).sum();
    let mut asked = 0;
    let mut found = 0;
    for (needle, id) in &set.needles {
        let Some(question) = &needle.question else {
            continue;
        };
        asked += 1;
        let mut query = SearchQuery::new(question.as_str());
        query.limit = 5;
        let page = store.search(&needle.user, &query).await.expect("search");
        let own: Vec<&str> = set
            .sessions
            .iter()
            .filter(|(k, _)| k.user() == needle.user)
            .map(|(k, _)| k.session())
            .collect();
        assert!(page.hits.iter().all(|h| own.contains(&h.session.as_str())));
        match page.hits.iter().position(|h| h.message_id == *id) {
            Some(_) => found += 1,
            None => println!(
                "  missed {} ({:?}); top hit: {:?}",
                needle.id,
                question,
                page.hits.first().map(|h| &h.snippet)
            ),
        }
    }
    let recall = found as f64 / asked as f64;
    println!(
        "{}: {stored} messages, {asked} questions, recall@5 = {recall:.3} ({found}/{asked})",
        store.describe()
    );
    recall
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_recall_at_5_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("eval.db")).await.unwrap();
    let set = build();
    store_set(&store, &set).await;
    let recall = recall_at_5(&store, &set).await;
    assert!(
        recall >= MIN_RECALL_AT_5,
        "recall@5 {recall:.3} < {MIN_RECALL_AT_5}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_recall_at_5_on_postgres() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let url = server.create_database("search_eval");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    let set = build();
    store_set(store.as_ref(), &set).await;
    // Term weights come from the column's statistics, which autovacuum gathers after a
    // load like this one; without them every term weighs the same (printed, not judged).
    println!("before ANALYZE:");
    recall_at_5(store.as_ref(), &set).await;
    server.psql("search_eval", "ANALYZE ragchat_messages");
    println!("after ANALYZE:");
    let recall = recall_at_5(store.as_ref(), &set).await;
    assert!(
        recall >= MIN_RECALL_AT_5,
        "recall@5 {recall:.3} < {MIN_RECALL_AT_5}"
    );
}
