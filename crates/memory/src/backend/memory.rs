//! `memory://`: sessions in this process's RAM.
//!
//! This is the design ragchat replaces: fast, and gone when the process exits. It is
//! kept for tests and for the demo that shows what is lost.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::shared::{now_ms, page_of, remaining_secs, QuotaCheck};
use crate::error::Result;
use crate::limits::{ListCursor, ReadFrom, ReadLimit};
use crate::message::{millis_to_datetime, Message, MessageId, SessionKey};
use crate::store::{
    AppendOptions, AppendOutcome, Durability, LoadedSession, SessionMeta, SessionPage,
    SessionStore, SessionSummary, StoreKind, Ttl,
};
use crate::title::title_of;

/// Sessions held in process RAM.
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<SessionKey, Session>>,
}

#[derive(Debug)]
struct Session {
    created_at_ms: i64,
    updated_at_ms: i64,
    expires_at_ms: Option<i64>,
    last_seq: u64,
    trimmed_seq: u64,
    bytes: u64,
    entries: VecDeque<(u64, Message)>,
    ids: HashSet<MessageId>,
    /// The first question, once an append brought one.
    auto_title: Option<String>,
    /// The title given by a person.
    given_title: Option<String>,
}

impl Session {
    fn new(now: i64) -> Self {
        Session {
            created_at_ms: now,
            updated_at_ms: now,
            expires_at_ms: None,
            last_seq: 0,
            trimmed_seq: 0,
            bytes: 0,
            entries: VecDeque::new(),
            ids: HashSet::new(),
            auto_title: None,
            given_title: None,
        }
    }

    fn meta(&self, now: i64) -> SessionMeta {
        SessionMeta {
            message_count: self.entries.len() as u64,
            bytes: self.bytes,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            last_seq: self.last_seq,
            trimmed_seq: self.trimmed_seq,
            ttl_remaining_secs: remaining_secs(self.expires_at_ms, now),
            title: self.title(),
        }
    }

    fn title(&self) -> Option<String> {
        self.given_title.clone().or_else(|| self.auto_title.clone())
    }

    fn expired(&self, now: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the live session (expired ones are dropped first).
    fn with_live<T>(&self, key: &SessionKey, f: impl FnOnce(Option<&mut Session>, i64) -> T) -> T {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.get(key).is_some_and(|s| s.expired(now)) {
            sessions.remove(key);
        }
        f(sessions.get_mut(key), now)
    }
}

/// The entries of a session that a read from `from` within `limit` returns, and
/// whether the bound left some of its range out.
fn read_range(
    entries: &VecDeque<(u64, Message)>,
    from: ReadFrom,
    limit: ReadLimit,
) -> (Vec<(u64, Message)>, bool) {
    let mut out = Vec::new();
    let mut used = 0;
    match from {
        ReadFrom::After(after) => {
            let start = entries.partition_point(|(seq, _)| *seq <= after);
            let mut range = entries.range(start..);
            for (seq, m) in range.by_ref() {
                out.push((*seq, m.clone()));
                used += m.stored_bytes();
                if !limit.admits_more(out.len(), used) {
                    break;
                }
            }
            let more = range.next().is_some();
            (out, more)
        }
        ReadFrom::Newest { after } => {
            let start = entries.partition_point(|(seq, _)| *seq <= after);
            let mut range = entries.range(start..).rev();
            for (seq, m) in range.by_ref() {
                out.push((*seq, m.clone()));
                used += m.stored_bytes();
                if !limit.admits_more(out.len(), used) {
                    break;
                }
            }
            let more = range.next().is_some();
            out.reverse();
            (out, more)
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    fn describe(&self) -> String {
        "memory://".to_string()
    }

    fn identity(&self) -> String {
        // RAM of this process: no other handle shares it, so no journal entry could
        // ever belong to it.
        format!("memory://{:p}", self)
    }

    async fn create(&self, key: &SessionKey, ttl: Ttl) -> Result<SessionMeta> {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if sessions.get(key).is_some_and(|s| s.expired(now)) {
            sessions.remove(key);
        }
        let session = sessions
            .entry(key.clone())
            .or_insert_with(|| Session::new(now));
        session.expires_at_ms = ttl.expires_at_ms(now);
        Ok(session.meta(now))
    }

    async fn append(
        &self,
        key: &SessionKey,
        messages: &[Message],
        opts: AppendOptions,
    ) -> Result<AppendOutcome> {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| !s.expired(now));
        let existing = sessions.get(key);
        let mut seen = HashSet::new();
        let adding: u64 = messages
            .iter()
            .filter(|m| seen.insert(m.id) && existing.is_none_or(|s| !s.ids.contains(&m.id)))
            .map(Message::stored_bytes)
            .sum();
        let user_sessions = || sessions.keys().filter(|k| k.user() == key.user()).count() as u64;
        let user_bytes = || {
            sessions
                .iter()
                .filter(|(k, _)| k.user() == key.user())
                .map(|(_, s)| s.bytes)
                .sum::<u64>()
        };
        QuotaCheck {
            quotas: opts.quotas,
            creates_session: existing.is_none(),
            session_bytes: existing.map_or(0, |s| s.bytes),
            adding,
        }
        .check(key, user_sessions, user_bytes)?;
        let session = sessions
            .entry(key.clone())
            .or_insert_with(|| Session::new(now));
        let mut seqs = Vec::with_capacity(messages.len());
        for message in messages {
            if session.ids.insert(message.id) {
                session.last_seq += 1;
                session.bytes += message.stored_bytes();
                session
                    .entries
                    .push_back((session.last_seq, message.clone()));
                seqs.push(Some(session.last_seq));
            } else {
                seqs.push(None);
            }
        }
        session.updated_at_ms = now;
        if session.auto_title.is_none() {
            session.auto_title = title_of(messages);
        }
        if opts.max_messages > 0 {
            while session.entries.len() as u64 > opts.max_messages {
                if let Some((seq, old)) = session.entries.pop_front() {
                    session.ids.remove(&old.id);
                    session.bytes -= old.stored_bytes();
                    session.trimmed_seq = seq;
                }
            }
        }
        session.expires_at_ms = opts.ttl.expires_at_ms(now);
        Ok(AppendOutcome {
            seqs,
            meta: session.meta(now),
            stamp: None,
            repaired: false,
        })
    }

    async fn load(
        &self,
        key: &SessionKey,
        from: ReadFrom,
        limit: ReadLimit,
        ttl: Ttl,
    ) -> Result<Option<LoadedSession>> {
        Ok(self.with_live(key, |session, now| {
            let session = session?;
            session.expires_at_ms = ttl.expires_at_ms(now);
            let (messages, more) = read_range(&session.entries, from, limit);
            Some(LoadedSession {
                meta: session.meta(now),
                messages,
                corrupt: Vec::new(),
                stamp: None,
                more,
                repaired: false,
            })
        }))
    }

    async fn meta(&self, key: &SessionKey) -> Result<Option<SessionMeta>> {
        Ok(self.with_live(key, |session, now| session.map(|s| s.meta(now))))
    }

    async fn list(
        &self,
        user: &str,
        after: Option<&ListCursor>,
        limit: usize,
    ) -> Result<SessionPage> {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| !s.expired(now));
        let all: Vec<SessionSummary> = sessions
            .iter()
            .filter(|(k, s)| {
                k.user() == user && after.is_none_or(|c| c.precedes(s.updated_at_ms, k.session()))
            })
            .map(|(k, s)| SessionSummary {
                session: k.session().to_string(),
                message_count: s.entries.len() as u64,
                bytes: s.bytes,
                created_at: millis_to_datetime(s.created_at_ms),
                updated_at: millis_to_datetime(s.updated_at_ms),
                ttl_remaining_secs: remaining_secs(s.expires_at_ms, now),
                title: s.title(),
                tier: None,
            })
            .collect();
        Ok(page_of(all, limit))
    }

    async fn users(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let now = now_ms();
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let users: std::collections::BTreeSet<&str> = sessions
            .iter()
            .filter(|(k, s)| !s.expired(now) && after.is_none_or(|a| k.user() > a))
            .map(|(k, _)| k.user())
            .collect();
        Ok(users
            .into_iter()
            .take(limit.max(1))
            .map(str::to_string)
            .collect())
    }

    async fn set_title(&self, key: &SessionKey, title: Option<&str>) -> Result<bool> {
        Ok(self.with_live(key, |session, _| match session {
            Some(session) => {
                session.given_title = title.map(str::to_string);
                true
            }
            None => false,
        }))
    }

    async fn delete(&self, key: &SessionKey) -> Result<bool> {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(sessions.remove(key).is_some_and(|s| !s.expired(now)))
    }

    async fn purge_idle(&self, before_ms: i64, limit: usize) -> Result<Vec<SessionKey>> {
        let now = now_ms();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| !s.expired(now));
        let mut idle: Vec<(i64, SessionKey)> = sessions
            .iter()
            .filter(|(_, s)| s.updated_at_ms < before_ms)
            .map(|(k, s)| (s.updated_at_ms, k.clone()))
            .collect();
        idle.sort();
        idle.truncate(limit.max(1));
        // A user's usage is summed from the sessions themselves: removing one frees it.
        Ok(idle
            .into_iter()
            .map(|(_, key)| {
                sessions.remove(&key);
                key
            })
            .collect())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn durability(&self) -> Durability {
        Durability::None
    }
}
