//! PostgreSQL search reads only the rarer words' matches when they fill the page
//! (MaxScore, see `backend::postgres::search`); the pages must be the very pages of the
//! full search. Checked by paging: five hits a page (pruned where it can be) against one
//! page of a hundred (which the rarer words cannot fill), for queries pairing a word in
//! every message with rarer ones, on a harness PostgreSQL with column statistics. A
//! search that need not be exhaustive (a turn's recall) keeps the rarer words' page even
//! where the full search would rank otherwise, and that is checked too.
//! Skipped with a note where PostgreSQL is not installed.
#![cfg(feature = "postgres")]

use ragchat_memory::store::AppendOptions;
use ragchat_memory::{
    open_store, Message, MessageId, SearchQuery, SessionKey, SessionStore, StoreOptions,
};

async fn pages(store: &dyn SessionStore, text: &str, limit: usize) -> Vec<MessageId> {
    let mut query = SearchQuery::new(text);
    query.limit = limit;
    let mut ids = Vec::new();
    loop {
        let page = store.search("pat", &query).await.expect("search");
        ids.extend(page.hits.iter().map(|h| h.message_id));
        match page.next {
            Some(next) if ids.len() < 100 => query.cursor = Some(next),
            _ => return ids,
        }
    }
}

/// 2000 messages of `pat`'s in four conversations: "meeting" in every one, "zephyrine"
/// in one in 20 (twice in one in 40), "quokka" in one in 100.
async fn fill(store: &dyn SessionStore) {
    let fillers = [
        "harbour", "ledger", "violin", "orchard", "lantern", "granite", "saddle",
    ];
    for s in 0..4 {
        let key = SessionKey::new("pat", format!("s{s}")).unwrap();
        let messages: Vec<Message> = (0..500)
            .map(|i| {
                let n = s * 500 + i;
                let mut text = format!(
                    "The meeting notes mention the {} and the {}",
                    fillers[n % fillers.len()],
                    fillers[(n / 7) % fillers.len()]
                );
                if n % 20 == 0 {
                    text.push_str(", and a zephyrine");
                }
                if n % 100 == 0 {
                    text.push_str(" with a quokka");
                }
                if n % 40 == 3 {
                    text.push_str(", a zephyrine zephyrine day");
                }
                Message::user(text)
            })
            .collect();
        store
            .append(&key, &messages, AppendOptions::KEEP_ALL)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_pages_are_the_pages_of_the_full_search() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let url = server.create_database("search_pruning");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    fill(store.as_ref()).await;
    server.psql("search_pruning", "ANALYZE ragchat_messages");
    for text in [
        "meeting zephyrine",
        "meeting quokka",
        "zephyrine quokka meeting",
        "notes violin zephyrine",
        "meeting",
    ] {
        let paged = pages(store.as_ref(), text, 5).await;
        let whole = pages(store.as_ref(), text, 100).await;
        let n = paged.len().min(whole.len());
        assert!(n >= 20, "{text}: {n} hits");
        assert_eq!(paged[..n], whole[..n], "{text}");
    }
}

/// A search that need not be exhaustive (a turn's recall) takes a full page of the rarer
/// word's matches as it is, where the exhaustive search finds that messages holding only
/// the common word outrank them, and falls back to every match when the rarer word cannot
/// fill the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_need_not_be_exhaustive_reads_the_rarer_words_first() {
    let Some(server) = ragchat_testkit::postgres_or_skip() else {
        return;
    };
    let url = server.create_database("search_inexhaustive");
    let store = open_store(&url, &StoreOptions::default()).await.unwrap();
    fill(store.as_ref()).await;
    // Of 2300 messages, "orbit" in 190 (three times in 10 of them), "comet" in 110 (not
    // with "orbit"): comet is the rarer word, yet three orbits outscore one comet.
    let key = SessionKey::new("pat", "sky").unwrap();
    let messages: Vec<Message> = (0..300)
        .map(|i| {
            Message::user(match i {
                0..=9 => format!("orbit orbit orbit, log {i}"),
                10..=189 => format!("an orbit, log {i}"),
                _ => format!("a comet, log {i}"),
            })
        })
        .collect();
    store
        .append(&key, &messages, AppendOptions::KEEP_ALL)
        .await
        .unwrap();
    server.psql("search_inexhaustive", "ANALYZE ragchat_messages");
    let search = |limit: usize, exhaustive: bool| {
        let mut query = SearchQuery::new("orbit comet");
        query.limit = limit;
        query.exhaustive = exhaustive;
        let store = store.clone();
        async move { store.search("pat", &query).await.expect("search").hits }
    };
    let exact = search(10, true).await;
    assert!(
        exact
            .iter()
            .all(|h| h.content.starts_with("orbit orbit orbit")),
        "{:?}",
        exact.iter().map(|h| &h.content).collect::<Vec<_>>()
    );
    let recalled = search(10, false).await;
    assert_eq!(recalled.len(), 10);
    assert!(recalled.iter().all(|h| h.content.contains("comet")));
    // 110 messages hold "comet": a page of 150 needs the others too.
    let long = search(150, false).await;
    assert_eq!(long.len(), 150);
    assert_eq!(long, search(150, true).await);
}
