//! The conformance check of `users`: walking a whole store user by user, which is how
//! `sessions migrate` copies one store into another.

use std::time::Duration;

use super::{numbered, opts, StoreFixture};
use crate::message::{MessageId, SessionKey};
use crate::store::Ttl;

/// Paging through `users` lists every user who has a session exactly once, in
/// ascending order, each page after its cursor and within its limit; a user whose
/// sessions were all deleted (or, where sessions expire, all expired) is not listed;
/// an empty session counts.
pub async fn users_pages_list_every_user_once_ascending(f: &dyn StoreFixture) {
    let store = f.open().await;
    let name = store.describe();
    // The store may hold other tests' users: ours share a prefix no one else has.
    let tag = format!("w{}", &MessageId::new().to_string()[24..]);
    let user = |i: usize| format!("{tag}-{i}");
    let key = |i: usize, s: &str| SessionKey::new(user(i), s).unwrap();
    let ttl = opts(3600, 0);
    for (i, sessions) in [(0, 2), (1, 1), (2, 1), (4, 3), (6, 1)] {
        for s in 0..sessions {
            let k = key(i, &format!("s{s}"));
            store.append(&k, &numbered(2, "m"), ttl).await.unwrap();
        }
    }
    store
        .create(&key(3, "empty"), Ttl::secs(3600))
        .await
        .unwrap();
    assert!(store.delete(&key(2, "s0")).await.unwrap(), "{name}");
    assert!(store.delete(&key(4, "s1")).await.unwrap(), "{name}");
    let expiring = f.expires_idle_sessions();
    if expiring {
        store
            .append(&key(5, "brief"), &numbered(1, "m"), opts(1, 0))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
    }

    let mut ours = Vec::new();
    let mut after = tag.clone();
    let mut pages = 0;
    'walk: loop {
        let page = store.users(Some(&after), 2).await.expect("users");
        pages += 1;
        assert!(page.len() <= 2, "{name}: a page over its limit: {page:?}");
        for id in &page {
            assert!(*id > after, "{name}: {id} does not come after {after}");
            after = id.clone();
            if !id.starts_with(&format!("{tag}-")) {
                break 'walk;
            }
            ours.push(id.clone());
        }
        if page.len() < 2 {
            break;
        }
        assert!(pages < 20, "{name}: paging does not end");
    }
    let expected: Vec<String> = [0, 1, 3, 4, 6].into_iter().map(user).collect();
    assert_eq!(
        ours, expected,
        "{name}: every user with a session, once, ascending"
    );

    let first = store.users(None, 1).await.expect("users");
    assert_eq!(
        first.len(),
        1,
        "{name}: the first page of a non-empty store"
    );
    assert!(
        first[0] <= expected[0],
        "{name}: the first user is the smallest"
    );
}
