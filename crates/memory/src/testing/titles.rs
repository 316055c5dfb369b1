//! The conformance checks of conversation titles: the automatic title is the first
//! question and stays, a given title replaces it until cleared, and both live with the
//! session in the store.

use std::sync::Arc;

use super::{listed, opts, unique_key, StoreFixture};
use crate::error::MemoryError;
use crate::limits::{ReadFrom, ReadLimit};
use crate::manager::{ManagerConfig, SessionManager};
use crate::message::{Message, Role, SessionKey};
use crate::store::{SessionStore, Ttl};
use crate::title::{MAX_GIVEN_TITLE_CHARS, MAX_TITLE_CHARS};

/// The title `list`, `meta` and `load` show for the session.
async fn titles(store: &Arc<dyn SessionStore>, key: &SessionKey) -> [Option<String>; 3] {
    let meta = store.meta(key).await.expect("meta").expect("exists").title;
    let loaded = store
        .load(
            key,
            ReadFrom::After(0),
            ReadLimit::new(1, 1024),
            Ttl::secs(3600),
        )
        .await
        .expect("load")
        .expect("exists")
        .meta
        .title;
    [listed_title(store, key).await, meta, loaded]
}

/// The title the session has in its user's list.
async fn listed_title(store: &Arc<dyn SessionStore>, key: &SessionKey) -> Option<String> {
    listed(store, key.user())
        .await
        .into_iter()
        .find(|s| s.session == key.session())
        .expect("listed")
        .title
}

/// The append that brings the first question titles the session; later appends,
/// questions included, never change it; the appends' own metas say so too.
pub async fn the_first_question_titles_the_session(f: &dyn StoreFixture) {
    let store = f.open().await;
    let kind = store.describe();
    let key = unique_key("titled");
    let empty = store.create(&key, Ttl::secs(3600)).await.expect("create");
    assert_eq!(empty.title, None, "{kind}: a new session has no title");
    let system = [Message::new(Role::System, "Be brief.")];
    let outcome = store
        .append(&key, &system, opts(3600, 0))
        .await
        .expect("append");
    assert_eq!(outcome.meta.title, None, "{kind}: no question yet");
    let long = format!("What is\n  machine   learning, {}?", "really ".repeat(20));
    let first = [Message::user(long), Message::assistant("It is ...")];
    let outcome = store
        .append(&key, &first, opts(3600, 0))
        .await
        .expect("append");
    let title = outcome
        .meta
        .title
        .clone()
        .expect("titled by the first question");
    assert!(
        title.starts_with("What is machine learning, really"),
        "{kind}: {title}"
    );
    assert_eq!(title.chars().count(), MAX_TITLE_CHARS, "{kind}: {title}");
    assert!(title.ends_with('…'), "{kind}: {title}");
    let later = [
        Message::user("And neural networks?"),
        Message::assistant("..."),
    ];
    let outcome = store
        .append(&key, &later, opts(3600, 0))
        .await
        .expect("append");
    assert_eq!(
        outcome.meta.title.as_deref(),
        Some(title.as_str()),
        "{kind}: kept"
    );
    let reopened = f.open().await;
    for (what, shown) in ["list", "meta", "load"]
        .iter()
        .zip(titles(&reopened, &key).await)
    {
        assert_eq!(
            shown.as_deref(),
            Some(title.as_str()),
            "{kind}: {what} after reopening"
        );
    }
}

/// A given title replaces the automatic one in every reply, survives reopening and
/// later appends, and clearing it brings the first question back; a missing session
/// cannot be titled.
pub async fn a_given_title_replaces_the_first_question_until_cleared(f: &dyn StoreFixture) {
    let store = f.open().await;
    let kind = store.describe();
    let key = unique_key("renamed");
    let first = [
        Message::user("What is BM25?"),
        Message::assistant("A ranking."),
    ];
    store
        .append(&key, &first, opts(3600, 0))
        .await
        .expect("append");
    assert!(
        store
            .set_title(&key, Some("Search notes"))
            .await
            .expect("set"),
        "{kind}"
    );
    let later = [Message::user("And TF-IDF?")];
    let outcome = store
        .append(&key, &later, opts(3600, 0))
        .await
        .expect("append");
    assert_eq!(
        outcome.meta.title.as_deref(),
        Some("Search notes"),
        "{kind}: append"
    );
    let reopened = f.open().await;
    for (what, shown) in ["list", "meta", "load"]
        .iter()
        .zip(titles(&reopened, &key).await)
    {
        assert_eq!(
            shown.as_deref(),
            Some("Search notes"),
            "{kind}: {what} after reopening"
        );
    }
    assert!(
        reopened
            .set_title(&key, Some("Ranking"))
            .await
            .expect("rename"),
        "{kind}"
    );
    assert_eq!(
        listed_title(&reopened, &key).await.as_deref(),
        Some("Ranking")
    );
    assert!(
        reopened.set_title(&key, None).await.expect("clear"),
        "{kind}"
    );
    for (what, shown) in ["list", "meta", "load"]
        .iter()
        .zip(titles(&reopened, &key).await)
    {
        assert_eq!(
            shown.as_deref(),
            Some("What is BM25?"),
            "{kind}: {what} after clearing"
        );
    }
    let missing = unique_key("never-created");
    assert!(
        !store.set_title(&missing, Some("x")).await.expect("set"),
        "{kind}: missing"
    );
    assert!(
        !store.set_title(&missing, None).await.expect("clear"),
        "{kind}: missing"
    );
    assert!(
        store.meta(&missing).await.expect("meta").is_none(),
        "{kind}: nothing created"
    );
    store.delete(&key).await.expect("delete");
    assert!(
        !store.set_title(&key, Some("x")).await.expect("set"),
        "{kind}: deleted"
    );
}

/// `SessionManager::rename` trims, refuses bad titles (writing nothing) and says
/// whether the session exists; stats show the title.
pub async fn the_manager_renames_and_validates(f: &dyn StoreFixture) {
    let manager = SessionManager::new(f.open().await, ManagerConfig::default());
    let kind = manager.store_url();
    let key = unique_key("manager-rename");
    manager
        .add_message(&key, Role::User, "Hello there", Vec::new())
        .await
        .expect("add");
    let stats = manager.stats(&key).await.expect("stats").expect("exists");
    assert_eq!(stats.title.as_deref(), Some("Hello there"), "{kind}");
    assert!(manager
        .rename(&key, Some("  Greetings  "))
        .await
        .expect("rename"));
    let stats = manager.stats(&key).await.expect("stats").expect("exists");
    assert_eq!(stats.title.as_deref(), Some("Greetings"), "{kind}: trimmed");
    let too_long = "x".repeat(MAX_GIVEN_TITLE_CHARS + 1);
    for bad in ["", "  ", "two\nlines", too_long.as_str()] {
        let refused = manager.rename(&key, Some(bad)).await;
        assert!(
            matches!(refused, Err(MemoryError::InvalidInput(_))),
            "{kind}: {bad:?}: {refused:?}"
        );
    }
    let stats = manager.stats(&key).await.expect("stats").expect("exists");
    assert_eq!(
        stats.title.as_deref(),
        Some("Greetings"),
        "{kind}: unchanged"
    );
    assert!(manager.rename(&key, None).await.expect("clear"));
    let stats = manager.stats(&key).await.expect("stats").expect("exists");
    assert_eq!(
        stats.title.as_deref(),
        Some("Hello there"),
        "{kind}: cleared"
    );
    let missing = unique_key("manager-missing");
    assert!(
        !manager.rename(&missing, Some("x")).await.expect("rename"),
        "{kind}"
    );
}
