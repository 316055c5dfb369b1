//! Races between the journal replay and a turn's own store calls, against a real
//! redis-server, made deterministic: a wrapper around the Redis store holds one call at
//! a chosen point (as if the app's thread were descheduled there) while the replay
//! runs. Every read must still show every acknowledged message, or say it is partial.
//!
//! The flake these come from (`model.rs`, second regression seed): after an app
//! restart with messages of session 1 still in the journal, a complete read returned
//! only the messages appended after the restart.
#![cfg(all(feature = "redis", feature = "sqlite"))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ragchat_memory::journal::{Journal, JournalConfig};
use ragchat_memory::store::{AppendOptions, AppendOutcome, LoadedSession, SessionMeta};
use ragchat_memory::{
    open_store, ListCursor, ManagerConfig, Message, ReadFrom, ReadLimit, Result, SessionKey,
    SessionManager, SessionPage, SessionStore, Stamp, StoreKind, StoreOptions, Ttl,
};
use ragchat_testkit::RedisServer;
use tokio::sync::Notify;

/// A point where a store call waits: `reached` is signalled when the call gets there,
/// and it goes on once `open` is signalled.
#[derive(Debug, Default)]
struct Gate {
    reached: Notify,
    open: Notify,
}

impl Gate {
    async fn hold(&self) {
        self.reached.notify_one();
        self.open.notified().await;
    }
}

/// Whether a held append waits before Redis runs it or after Redis answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Before,
    After,
}

/// The real Redis store; the next append starting with a given message, or the next
/// load of a given session, waits at a gate.
#[derive(Debug)]
struct Held {
    inner: Arc<dyn SessionStore>,
    append: Mutex<Option<(String, When, Arc<Gate>)>>,
    load: Mutex<Option<(SessionKey, Arc<Gate>)>>,
}

impl Held {
    fn hold_append(&self, first: &str, when: When) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.append.lock().unwrap() = Some((first.to_string(), when, Arc::clone(&gate)));
        gate
    }

    /// The next load of `key` waits after Redis answered it.
    fn hold_load(&self, key: &SessionKey) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.load.lock().unwrap() = Some((key.clone(), Arc::clone(&gate)));
        gate
    }
}

#[async_trait]
impl SessionStore for Held {
    fn kind(&self) -> StoreKind {
        self.inner.kind()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn identity(&self) -> String {
        self.inner.identity()
    }
    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        let held = {
            let mut slot = self.append.lock().unwrap();
            let first = messages.first().map(|m| m.content.as_str());
            match slot.as_ref() {
                Some((text, _, _)) if Some(text.as_str()) == first => slot.take(),
                _ => None,
            }
        };
        if let Some((_, When::Before, gate)) = &held {
            gate.hold().await;
        }
        let outcome = self.inner.append(key, messages, opts).await;
        if let Some((_, When::After, gate)) = &held {
            gate.hold().await;
        }
        outcome
    }
    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        let held = {
            let mut slot = self.load.lock().unwrap();
            match slot.as_ref() {
                Some((k, _)) if k == key => slot.take(),
                _ => None,
            }
        };
        let loaded = self.inner.load(key, from, limit, ttl).await;
        if let Some((_, gate)) = held {
            gate.hold().await;
        }
        loaded
    }
    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        self.inner.meta(key).await
    }
    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        self.inner.list(user, after, limit).await
    }
    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        self.inner.set_title(key, title).await
    }
    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        self.inner.delete(key).await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    fn unchanged_since(&self, key: &SessionKey, stamp: Stamp) -> bool {
        self.inner.unchanged_since(key, stamp)
    }
    fn keeps_idle_sessions(&self) -> bool {
        self.inner.keeps_idle_sessions()
    }
}

struct Setup {
    _server: RedisServer,
    dir: tempfile::TempDir,
    held: Arc<Held>,
    manager: SessionManager,
    key: SessionKey,
}

impl Setup {
    fn journal_config(&self) -> JournalConfig {
        journal_config(self.dir.path())
    }

    /// Journals `texts` for the session through a handle of its own, as another (or
    /// an earlier) process on the same data dir does.
    async fn journal_elsewhere(&self, texts: &[&str]) {
        let journal = Journal::open(self.journal_config(), &self.held.identity()).unwrap();
        journal.append(&self.key, &messages(texts)).await.unwrap();
    }

    async fn read(&self) -> (Vec<String>, bool) {
        let history = self.manager.history(&self.key).await.unwrap();
        let texts = history.iter().map(|m| m.content.clone()).collect();
        (texts, history.is_partial())
    }
}

fn journal_config(dir: &std::path::Path) -> JournalConfig {
    JournalConfig {
        path: dir.join("journal.db"),
        max_bytes: 1 << 30,
    }
}

fn messages(texts: &[&str]) -> Vec<Message> {
    texts.iter().map(|t| Message::user(*t)).collect()
}

/// A manager over the held Redis store, with a journal that already holds `journaled`
/// for the session (acknowledged by the process that ran before this one). No
/// background replay: the tests run it when they choose. The store timeout is long
/// because held calls count against it.
async fn setup(journaled: &[&str]) -> Option<Setup> {
    let server = ragchat_testkit::redis_or_skip()?;
    let dir = tempfile::tempdir().unwrap();
    let inner = open_store(&server.url(), &StoreOptions::default())
        .await
        .unwrap();
    let key = SessionKey::new("race", "s1").unwrap();
    if !journaled.is_empty() {
        let journal = Journal::open(journal_config(dir.path()), &inner.identity()).unwrap();
        journal.append(&key, &messages(journaled)).await.unwrap();
    }
    let held = Arc::new(Held {
        inner,
        append: Mutex::new(None),
        load: Mutex::new(None),
    });
    let manager = SessionManager::with_journal(
        Arc::clone(&held) as Arc<dyn SessionStore>,
        ManagerConfig {
            journal: Some(journal_config(dir.path())),
            store_timeout: Duration::from_secs(30),
            background_replay: false,
            ..ManagerConfig::default()
        },
    )
    .unwrap();
    Some(Setup {
        _server: server,
        dir,
        held,
        manager,
        key,
    })
}

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
