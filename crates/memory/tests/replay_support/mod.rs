//! What the replay race tests share: the real Redis store behind a wrapper that holds
//! one call at a gate (as if the app's thread were descheduled there) or refuses an
//! append (as a store that just went away does), and a manager with a journal over it.
#![allow(dead_code)] // each test file uses its own share of these

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ragchat_memory::journal::{Journal, JournalConfig};
use ragchat_memory::store::{AppendOptions, AppendOutcome, LoadedSession, SessionMeta};
use ragchat_memory::{
    open_store, ListCursor, ManagerConfig, MemoryError, Message, ReadFrom, ReadLimit, Result,
    SessionKey, SessionManager, SessionPage, SessionStore, Stamp, StoreKind, StoreOptions, Ttl,
};
use ragchat_testkit::RedisServer;
use tokio::sync::Notify;

/// A point where a store call waits: `reached` is signalled when the call gets there,
/// and it goes on once `open` is signalled.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    pub(crate) reached: Notify,
    pub(crate) open: Notify,
}

impl Gate {
    async fn hold(&self) {
        self.reached.notify_one();
        self.open.notified().await;
    }
}

/// Whether a held append waits before Redis runs it or after Redis answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    Before,
    After,
}

/// The real Redis store; the next append starting with a given message, or the next
/// load of a given session, waits at a gate; appends starting with the refused message
/// fail as if the store were unreachable.
#[derive(Debug)]
pub(crate) struct Held {
    inner: Arc<dyn SessionStore>,
    append: Mutex<Option<(String, When, Arc<Gate>)>>,
    load: Mutex<Option<(SessionKey, Arc<Gate>)>>,
    refused: Mutex<Option<String>>,
}

impl Held {
    pub(crate) fn hold_append(&self, first: &str, when: When) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.append.lock().unwrap() = Some((first.to_string(), when, Arc::clone(&gate)));
        gate
    }

    /// The next load of `key` waits after Redis answered it.
    pub(crate) fn hold_load(&self, key: &SessionKey) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        *self.load.lock().unwrap() = Some((key.clone(), Arc::clone(&gate)));
        gate
    }

    /// Appends starting with `first` fail (retryably) until this is called with `None`.
    pub(crate) fn refuse_append(&self, first: Option<&str>) {
        *self.refused.lock().unwrap() = first.map(str::to_string);
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
        let first = messages.first().map(|m| m.content.as_str());
        if self
            .refused
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|r| Some(r) == first)
        {
            return Err(MemoryError::Unavailable {
                store: self.describe(),
                reason: "refused by the test".into(),
            });
        }
        let held = {
            let mut slot = self.append.lock().unwrap();
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

pub(crate) struct Setup {
    _server: RedisServer,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) held: Arc<Held>,
    pub(crate) manager: SessionManager,
    pub(crate) key: SessionKey,
}

impl Setup {
    pub(crate) fn journal_config(&self) -> JournalConfig {
        journal_config(self.dir.path())
    }

    /// Journals `texts` for the session through a handle of its own, as another (or
    /// an earlier) process on the same data dir does.
    pub(crate) async fn journal_elsewhere(&self, texts: &[&str]) {
        let journal = Journal::open(self.journal_config(), &self.held.identity()).unwrap();
        journal.append(&self.key, &messages(texts)).await.unwrap();
    }

    pub(crate) async fn read(&self) -> (Vec<String>, bool) {
        let history = self.manager.history(&self.key).await.unwrap();
        (texts(history.iter()), history.is_partial())
    }
}

pub(crate) fn journal_config(dir: &std::path::Path) -> JournalConfig {
    JournalConfig {
        path: dir.join("journal.db"),
        max_bytes: 1 << 30,
    }
}

pub(crate) fn messages(texts: &[&str]) -> Vec<Message> {
    texts.iter().map(|t| Message::user(*t)).collect()
}

pub(crate) fn texts<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Vec<String> {
    messages.into_iter().map(|m| m.content.clone()).collect()
}

/// A manager over the held Redis store, with a journal that already holds `journaled`
/// for the session (acknowledged by the process that ran before this one). No
/// background replay: the tests run it when they choose. The store timeout is long
/// because held calls count against it.
pub(crate) async fn setup(journaled: &[&str]) -> Option<Setup> {
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
        refused: Mutex::new(None),
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
