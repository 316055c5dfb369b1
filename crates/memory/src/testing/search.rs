//! The conformance checks of search: a store that searches finds a user's own messages
//! (stemmed), ranks and pages them, never shows another user's, and forgets deleted
//! and trimmed ones at once; a store that cannot search says so with `Unsupported`.

use std::collections::HashSet;
use std::sync::Arc;

use super::{opts, unique_key, StoreFixture};
use crate::error::MemoryError;
use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, SessionKey};
use crate::search::{SearchPage, SearchQuery};
use crate::store::SessionStore;

async fn search(
    store: &Arc<dyn SessionStore>,
    user: &str,
    text: &str,
    session: Option<&str>,
) -> SearchPage {
    let mut query = SearchQuery::new(text);
    query.session = session.map(str::to_string);
    query.limit = 100;
    store.search(user, &query).await.expect("search")
}

fn contents(page: &SearchPage) -> Vec<String> {
    page.hits
        .iter()
        .map(|h| crate::search::snippet::to_plain(&h.snippet, "", ""))
        .collect()
}

/// Runs the search checks: the full set on a store that searches, else the refusal.
pub async fn search_checks(f: &dyn StoreFixture) {
    if f.searches() {
        search_finds_ranks_and_isolates(f).await;
        search_pages_walk_every_hit_once(f).await;
        search_forgets_deleted_and_trimmed_messages(f).await;
    } else {
        search_is_refused_clearly(f).await;
    }
}

/// Stemmed matches, best first, snippets marked, the session filter, and nobody else's.
pub async fn search_finds_ranks_and_isolates(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let trip = unique_key("trip");
    let work = SessionKey::new(trip.user(), "work").unwrap();
    let other = unique_key("trip");
    let write = |key: &SessionKey, texts: &[&str]| {
        let store = store.clone();
        let (key, msgs) = (
            key.clone(),
            texts.iter().map(|t| Message::user(*t)).collect::<Vec<_>>(),
        );
        async move {
            store
                .append(&key, &msgs, opts(3600, 0))
                .await
                .expect("append")
        }
    };
    write(
        &trip,
        &[
            "Which train goes to Lyon?",
            "Book the hotel near the station",
        ],
    )
    .await;
    write(
        &work,
        &[
            "The learning rate was lowered to 3e-4 last week",
            "We discussed learning rates and the learned schedule: learning rate warmup",
            "Backups run with restic every night",
        ],
    )
    .await;
    write(&other, &["My learning rate secrets: learning rate 42"]).await;

    let page = search(&store, trip.user(), "learning rate", None).await;
    assert_eq!(page.hits.len(), 2, "{name}: {:?}", contents(&page));
    assert!(page.hits.iter().all(|h| h.session == "work"), "{name}");
    assert!(
        page.hits[0]
            .snippet
            .contains("<mark>learning</mark> <mark>rates</mark>"),
        "{name}: the message with the most matches ranks first: {:?}",
        page.hits
    );
    assert!(page.hits[0].score >= page.hits[1].score, "{name}");
    assert!(page.next.is_none(), "{name}");
    let learned = search(&store, trip.user(), "LEARNED", None).await;
    assert_eq!(
        learned.hits.len(),
        2,
        "{name}: stemming: {:?}",
        contents(&learned)
    );

    let in_trip = search(&store, trip.user(), "station learning", Some("trip")).await;
    assert_eq!(in_trip.hits.len(), 1, "{name}: {:?}", contents(&in_trip));
    assert_eq!(in_trip.hits[0].session, "trip");
    assert_eq!(in_trip.hits[0].seq, 2, "{name}");
    assert_eq!(
        in_trip.hits[0].snippet,
        "Book the hotel near the <mark>station</mark>"
    );

    let theirs = search(&store, other.user(), "restic station learning", None).await;
    assert_eq!(theirs.hits.len(), 1, "{name}: {:?}", contents(&theirs));
    assert_eq!(theirs.hits[0].session, other.session());
    let nothing = search(&store, trip.user(), "zeppelin", None).await;
    assert!(nothing.hits.is_empty() && nothing.next.is_none(), "{name}");
    let only_marks = search(&store, trip.user(), "?!", None).await;
    assert!(only_marks.hits.is_empty(), "{name}");
    let nobody = search(&store, "nobody-at-all", "learning", None).await;
    assert!(nobody.hits.is_empty(), "{name}");
}

/// Pages of 3 walk 20 hits in order, each once.
pub async fn search_pages_walk_every_hit_once(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("paging");
    let msgs: Vec<Message> = (0..20)
        .map(|i| Message::user(format!("note {i}: {}", "backup ".repeat(1 + i % 4))))
        .collect();
    store
        .append(&key, &msgs, opts(3600, 0))
        .await
        .expect("append");
    let mut seen = HashSet::new();
    let mut last_score = f64::INFINITY;
    let mut query = SearchQuery::new("backup");
    query.limit = 3;
    let mut pages = 0;
    loop {
        let page = store.search(key.user(), &query).await.expect("search");
        pages += 1;
        for hit in &page.hits {
            assert!(hit.score <= last_score, "{name}: best first");
            last_score = hit.score;
            assert!(seen.insert(hit.message_id), "{name}: {:?} twice", hit.seq);
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
        assert!(pages < 20, "{name}: paging does not end");
    }
    assert_eq!(seen.len(), 20, "{name}");
    assert_eq!(pages, 7, "{name}");
}

/// Deleting a session, and trimming its oldest messages, take their hits with them.
pub async fn search_forgets_deleted_and_trimmed_messages(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("forget");
    let kept = SessionKey::new(key.user(), "kept").unwrap();
    let first = vec![
        Message::user("zebra crossing one"),
        Message::user("zebra two"),
    ];
    store
        .append(&key, &first, opts(3600, 0))
        .await
        .expect("append");
    store
        .append(&kept, &[Message::user("zebra kept")], opts(3600, 0))
        .await
        .expect("append");
    assert_eq!(
        search(&store, key.user(), "zebra", None).await.hits.len(),
        3,
        "{name}"
    );
    store
        .append(&key, &[Message::user("zebra three")], opts(3600, 2))
        .await
        .expect("append with trim");
    let page = search(&store, key.user(), "zebra", Some(key.session())).await;
    let mut seqs: Vec<u64> = page.hits.iter().map(|h| h.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [2, 3], "{name}: the trimmed message is gone");
    assert!(store.delete(&key).await.expect("delete"), "{name}");
    let page = search(&store, key.user(), "zebra", None).await;
    assert_eq!(contents(&page), ["zebra kept"], "{name}");
}

/// A store that cannot search answers `Unsupported`, naming what can, through the
/// manager too.
pub async fn search_is_refused_clearly(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let err = store
        .search("alice", &SearchQuery::new("anything"))
        .await
        .expect_err("this store does not search");
    assert!(matches!(err, MemoryError::Unsupported(_)), "{name}: {err}");
    assert!(err.to_string().contains("durable"), "{name}: {err}");
    let manager = SessionManager::new(store, ManagerConfig::default());
    let err = manager
        .search("alice", &SearchQuery::new("anything"))
        .await
        .expect_err("refused");
    assert!(matches!(err, MemoryError::Unsupported(_)), "{name}: {err}");
    let err = manager
        .search("alice", &SearchQuery::new(""))
        .await
        .expect_err("empty");
    assert!(matches!(err, MemoryError::InvalidInput(_)), "{name}: {err}");
}
