//! The conformance checks of the bounds (issue 11): every read is bounded in messages
//! and bytes, listings page with a cursor, quotas refuse appends and write nothing,
//! and a store names what it is without credentials.

use std::time::Duration;

use super::{load_all, numbered, opts, unique_key, StoreFixture};
use crate::error::MemoryError;
use crate::limits::{ListCursor, PageCursor, Quotas, ReadFrom, ReadLimit};
use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, SessionKey};
use crate::store::{AppendOptions, Ttl};

fn seqs(loaded: &crate::store::LoadedSession) -> Vec<u64> {
    loaded.messages.iter().map(|(s, _)| *s).collect()
}

/// Ten messages of exactly `size` bytes each.
fn sized(n: usize, size: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message::user(format!("{i:03}{}", "x".repeat(size - 3))))
        .collect()
}

/// Reads stop at the message bound and as soon as the byte bound is reached (at least
/// one entry, however big), say whether they left entries out, and read the newest
/// entries in order.
pub async fn reads_are_bounded_in_messages_and_bytes(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let key = unique_key("bounded");
    store
        .append(&key, &sized(10, 100), opts(3600, 0))
        .await
        .unwrap();
    let read = |from, limit| {
        let store = store.clone();
        let key = key.clone();
        async move {
            store
                .load(&key, from, limit, Ttl::secs(3600))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let mut after = 0;
    let mut walked = Vec::new();
    loop {
        let page = read(ReadFrom::After(after), ReadLimit::new(3, u64::MAX)).await;
        walked.extend(seqs(&page));
        after = *walked.last().unwrap();
        if !page.more {
            break;
        }
        assert!(walked.len() < 20, "{name}: paging does not end");
    }
    assert_eq!(walked, (1..=10).collect::<Vec<u64>>(), "{name}");

    let by_bytes = read(ReadFrom::After(0), ReadLimit::new(100, 250)).await;
    assert_eq!(
        seqs(&by_bytes),
        [1, 2, 3],
        "{name}: stops once 250 bytes are reached"
    );
    assert!(by_bytes.more, "{name}");
    let one = read(ReadFrom::After(4), ReadLimit::new(100, 10)).await;
    assert_eq!(
        seqs(&one),
        [5],
        "{name}: one entry even when it alone is over the bound"
    );
    assert_eq!(one.meta.message_count, 10, "{name}");

    let newest = read(ReadFrom::Newest { after: 0 }, ReadLimit::new(3, u64::MAX)).await;
    assert_eq!(
        seqs(&newest),
        [8, 9, 10],
        "{name}: the newest, oldest first"
    );
    assert!(newest.more, "{name}: older entries were left out");
    let rest = read(ReadFrom::Newest { after: 8 }, ReadLimit::new(5, u64::MAX)).await;
    assert_eq!(seqs(&rest), [9, 10], "{name}");
    assert!(!rest.more, "{name}");
    let bytes = read(ReadFrom::Newest { after: 0 }, ReadLimit::new(100, 150)).await;
    assert_eq!(seqs(&bytes), [9, 10], "{name}");
    let none = read(ReadFrom::Newest { after: 10 }, ReadLimit::new(5, 100)).await;
    assert!(none.messages.is_empty() && !none.more, "{name}");
    assert_eq!(
        read(ReadFrom::After(10), ReadLimit::new(5, 100))
            .await
            .messages
            .len(),
        0,
        "{name}"
    );

    // After trimming, reads start at the first entry kept.
    store
        .append(&key, &sized(2, 100), opts(3600, 5))
        .await
        .unwrap();
    let kept = read(ReadFrom::After(0), ReadLimit::new(2, u64::MAX)).await;
    assert_eq!(seqs(&kept), [8, 9], "{name}");
    let tail = read(ReadFrom::Newest { after: 0 }, ReadLimit::new(100, u64::MAX)).await;
    assert_eq!(seqs(&tail), [8, 9, 10, 11, 12], "{name}");
    assert!(!tail.more, "{name}: trimmed entries are not 'more'");
}

/// A user's sessions come in pages, newest activity first, each session once.
pub async fn list_pages_walk_every_session_once(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    let first = unique_key("s0");
    let user = first.user().to_string();
    let mut written = Vec::new();
    for i in 0..7 {
        let key = SessionKey::new(&user, format!("s{i}")).unwrap();
        store
            .append(&key, &numbered(1, "m"), opts(3600, 0))
            .await
            .unwrap();
        written.push(format!("s{i}"));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    written.reverse();
    let mut seen = Vec::new();
    let mut after: Option<ListCursor> = None;
    let mut pages = 0;
    loop {
        let page = store.list(&user, after.as_ref(), 3).await.unwrap();
        assert!(page.sessions.len() <= 3, "{name}: page over its limit");
        seen.extend(page.sessions.iter().map(|s| s.session.clone()));
        pages += 1;
        match page.next {
            Some(next) => {
                let again: ListCursor = next.to_string().parse().unwrap();
                after = Some(again);
            }
            None => break,
        }
        assert!(pages < 10, "{name}: paging does not end");
    }
    assert_eq!(seen, written, "{name}: newest first, each once");
    assert_eq!(pages, 3, "{name}");
    let other = unique_key("s0");
    assert!(
        store
            .list(other.user(), None, 3)
            .await
            .unwrap()
            .sessions
            .is_empty(),
        "{name}"
    );
}

fn with_quotas(quotas: Quotas) -> AppendOptions {
    AppendOptions {
        quotas,
        ..opts(3600, 0)
    }
}

fn is_quota(result: &crate::error::Result<crate::store::AppendOutcome>) -> bool {
    matches!(result, Err(MemoryError::Quota(_)))
}

/// An append over a quota fails with `Quota` and writes nothing; messages already
/// stored do not count; deleting makes room again.
pub async fn quotas_refuse_and_write_nothing(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();

    // Bytes per session.
    let key = unique_key("capped");
    let q = with_quotas(Quotas {
        session_bytes: 250,
        ..Quotas::UNBOUNDED
    });
    let two = sized(2, 100);
    store.append(&key, &two, q).await.unwrap();
    let over = store.append(&key, &sized(1, 100), q).await;
    assert!(is_quota(&over), "{name}: {over:?}");
    let err = over.unwrap_err().to_string();
    assert!(
        err.contains("capped") && err.contains("250"),
        "{name}: {err}"
    );
    let again = store.append(&key, &two, q).await.unwrap();
    assert_eq!(again.stored(), 0, "{name}: a replay at the limit is fine");
    let meta = store.meta(&key).await.unwrap().unwrap();
    assert_eq!((meta.message_count, meta.bytes), (2, 200), "{name}");
    assert_eq!(load_all(&store, &key, 0).await.unwrap().messages.len(), 2);

    // Sessions per user.
    let a = unique_key("a");
    let user = a.user().to_string();
    let b = SessionKey::new(&user, "b").unwrap();
    let c = SessionKey::new(&user, "c").unwrap();
    let q = with_quotas(Quotas {
        user_sessions: 2,
        ..Quotas::UNBOUNDED
    });
    store.append(&a, &numbered(1, "a"), q).await.unwrap();
    store.append(&b, &numbered(1, "b"), q).await.unwrap();
    store.append(&b, &numbered(1, "b again"), q).await.unwrap();
    let third = store.append(&c, &numbered(1, "c"), q).await;
    assert!(is_quota(&third), "{name}: {third:?}");
    assert!(
        store.meta(&c).await.unwrap().is_none(),
        "{name}: c was written"
    );
    assert!(store.delete(&a).await.unwrap());
    store.append(&c, &numbered(1, "c"), q).await.unwrap();

    // Bytes per user.
    let x = unique_key("x");
    let y = SessionKey::new(x.user(), "y").unwrap();
    let q = with_quotas(Quotas {
        user_bytes: 300,
        ..Quotas::UNBOUNDED
    });
    store.append(&x, &sized(2, 100), q).await.unwrap();
    store.append(&y, &sized(1, 100), q).await.unwrap();
    let over = store.append(&y, &sized(1, 10), q).await;
    assert!(is_quota(&over), "{name}: {over:?}");
    assert_eq!(store.meta(&y).await.unwrap().unwrap().message_count, 1);
    assert!(store.delete(&x).await.unwrap());
    store.append(&y, &sized(1, 100), q).await.unwrap();
}

/// Two handles on one store name the same identity, and it holds no credentials.
pub async fn the_identity_is_stable_and_names_no_secret(f: &dyn StoreFixture) {
    let (a, b) = (f.open().await, f.open().await);
    let id = a.identity();
    if a.kind().is_durable() {
        assert_eq!(id, b.identity(), "the same store, seen twice");
    }
    assert!(!id.contains('@'), "{id}");
    assert!(!id.is_empty());
}

/// A manager's history is the recent tail within its bound (saying there is more);
/// pages read the whole conversation in order.
pub async fn history_is_a_bounded_tail_and_pages_read_all_of_it(f: &dyn StoreFixture) {
    let config = ManagerConfig {
        history_limit: ReadLimit::new(5, 1 << 20),
        ..ManagerConfig::default()
    };
    let writer = SessionManager::new(f.open().await, config.clone());
    let name = writer.store_url();
    let key = unique_key("tail");
    let sent = numbered(12, "t");
    for m in &sent {
        writer.append(&key, vec![m.clone()]).await.unwrap();
    }
    let texts = |h: &[Message]| h.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    let expected_tail = texts(&sent[7..]);
    let history = writer.history(&key).await.unwrap();
    assert_eq!(
        texts(&history.to_vec()),
        expected_tail,
        "{name}: the writer's copy"
    );
    assert!(history.has_earlier(), "{name}");
    let reader = SessionManager::new(f.open().await, config);
    let history = reader.history(&key).await.unwrap();
    assert_eq!(
        texts(&history.to_vec()),
        expected_tail,
        "{name}: a new reader"
    );
    assert!(history.has_earlier(), "{name}");

    let mut all = Vec::new();
    let mut after: Option<PageCursor> = None;
    loop {
        let page = reader
            .page(&key, after, ReadLimit::new(4, 1 << 20))
            .await
            .unwrap()
            .expect("the session exists");
        assert!(page.messages.len() <= 4 && !page.partial, "{name}");
        all.extend(page.messages);
        if !page.has_more {
            break;
        }
        after = page.next_cursor;
        assert!(after.is_some(), "{name}: has_more without a cursor");
    }
    assert_eq!(
        texts(&all),
        texts(&sent),
        "{name}: every message once, in order"
    );
    assert!(reader
        .page(&unique_key("nothing"), None, ReadLimit::new(4, 1 << 20))
        .await
        .unwrap()
        .is_none());
    let short = unique_key("short");
    writer.append(&short, numbered(2, "s")).await.unwrap();
    assert!(
        !reader.history(&short).await.unwrap().has_earlier(),
        "{name}"
    );
}

/// The manager applies its configured quotas and reports `Quota`.
pub async fn quota_refusals_reach_the_manager_as_quota(f: &dyn StoreFixture) {
    let config = ManagerConfig {
        quotas: Quotas {
            session_bytes: 150,
            ..Quotas::UNBOUNDED
        },
        ..ManagerConfig::default()
    };
    let manager = SessionManager::new(f.open().await, config);
    let name = manager.store_url();
    let key = unique_key("mquota");
    manager.append(&key, sized(1, 100)).await.unwrap();
    let err = manager.append(&key, sized(1, 100)).await.unwrap_err();
    assert!(matches!(err, MemoryError::Quota(_)), "{name}: {err}");
    assert!(!err.is_retryable());
    assert_eq!(manager.history(&key).await.unwrap().len(), 1, "{name}");
}
